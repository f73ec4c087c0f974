package sim

import (
	"time"

	"github.com/bitville/apmd/core"
)

// recID names one record in the ledger: its index in ledger.recs.
type recID int32

const noRec recID = -1

// record is everything the simulator knows about one accepted record.
type record struct {
	body     string
	arrival  time.Time // core's clock when Add accepted it
	arrivalV time.Time // virtual time when Add accepted it
	proc     int       // the process that accepted it
	poison   bool      // the listener rejects any batch holding it (400)
	seq      uint64    // 0 until the record is seen with its number

	deliveries   int             // times the listener acknowledged it
	deadLettered core.DropReason // set when the engine dead-lettered it
	lostAtCrash  bool            // lost while core held it in memory at a crash
	dropped      bool            // vanished while core's drop counters covered it
	damaged      bool            // the simulator itself broke its frame on disk
}

// agentSeq is what a sequence number names: numbers are unique per agent.
type agentSeq struct {
	agent string
	seq   uint64
}

// ledger holds every record ever accepted, by identity. Its maps are only
// looked up, never iterated: walks go over recs, in acceptance order.
type ledger struct {
	recs   []record
	byBody map[string][]recID // records with these exact bytes, oldest first
	bySeq  map[agentSeq]recID // which record each (agent, number) names
	first  map[string]uint64  // per agent, the highest number delivered for the first time
	poison map[string]bool    // bodies the generator marked as poison
}

func newLedger() *ledger {
	return &ledger{byBody: map[string][]recID{}, bySeq: map[agentSeq]recID{}, first: map[string]uint64{}, poison: map[string]bool{}}
}

// accept adds a record that Add accepted.
func (l *ledger) accept(body []byte, at, atV time.Time, proc int) recID {
	id := recID(len(l.recs))
	s := string(body)
	l.recs = append(l.recs, record{body: s, arrival: at, arrivalV: atV, proc: proc, poison: l.poison[s]})
	l.byBody[s] = append(l.byBody[s], id)
	return id
}

// bindResult says what seeing a (number, bytes) pair revealed.
type bindResult int

const (
	bindOK         bindResult = iota
	bindUnknown               // no record has these bytes: never received
	bindTwoRecords            // the number already names a record with other bytes
	bindRenumbered            // the record was seen before with another number
)

// bind ties (agent, seq) to the record with these bytes, checking that a
// number never names two records and a record never changes number.
// Records with identical bytes (possible only in recorded traffic) are
// interchangeable: the oldest one not yet numbered is taken.
func (l *ledger) bind(agent string, seq uint64, data []byte) (recID, bindResult) {
	key := agentSeq{agent, seq}
	if id, ok := l.bySeq[key]; ok {
		if l.recs[id].body != string(data) {
			return id, bindTwoRecords
		}
		return id, bindOK
	}
	cands := l.byBody[string(data)]
	if len(cands) == 0 {
		return noRec, bindUnknown
	}
	pick := noRec
	for _, id := range cands {
		if l.recs[id].seq == seq {
			pick = id
			break
		}
		if pick == noRec && l.recs[id].seq == 0 {
			pick = id
		}
	}
	if pick == noRec {
		return cands[0], bindRenumbered
	}
	l.recs[pick].seq = seq
	l.bySeq[key] = pick
	return pick, bindOK
}

// find returns the record a disk frame holds without binding anything new
// under an agent: the record with that number and those bytes, or the
// oldest unnumbered one with those bytes.
func (l *ledger) find(seq uint64, data []byte) recID {
	pick := noRec
	for _, id := range l.byBody[string(data)] {
		if l.recs[id].seq == seq {
			return id
		}
		if pick == noRec && l.recs[id].seq == 0 {
			pick = id
		}
	}
	if pick != noRec {
		l.recs[pick].seq = seq
	}
	return pick
}

// idSet is a set of record IDs with a deterministic order of insertion.
type idSet struct {
	has  map[recID]bool
	list []recID
}

func newIDSet() *idSet { return &idSet{has: map[recID]bool{}} }

func (s *idSet) add(id recID) {
	if id != noRec && !s.has[id] {
		s.has[id] = true
		s.list = append(s.list, id)
	}
}
