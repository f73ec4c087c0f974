package sim

// syncMemory brings the model of core's memory (p.mem) up to date after a
// step, so that the engine knows by identity which records a crash may
// lose. Records enter p.mem as Add accepts them and leave it when acked or
// dead-lettered; what core did inside the step's calls is then inferred
// from its gauges (Stats.MemoryRecords, the records in memory not in
// flight, and Stats.MemoryBytes, all of them), using how core works:
//
//   - a spill takes records from the head of memory (in-flight ones too);
//   - a drop (memory_full, disk_full_newest) takes the oldest record in
//     memory that is not in flight.
//
// So what remains is p.mem without a prefix of s records, and without the
// d oldest not-in-flight records of the rest; d follows from s and the
// count, and the bytes must then match exactly. The smallest such s wins.
// If nothing matches, core's gauges contradict every history core could
// have had: a violation.
func (e *Engine) syncMemory(p *process) {
	n, want := p.st.MemoryRecords, p.st.MemoryBytes
	inFlight := func(id recID) bool {
		if p.fl == nil {
			return false
		}
		for _, f := range p.fl.ids {
			if f == id {
				return true
			}
		}
		return false
	}
	for s := 0; s <= len(p.mem); s++ {
		rest := p.mem[s:]
		free := 0
		for _, id := range rest {
			if !inFlight(id) {
				free++
			}
		}
		d := free - n
		if d < 0 {
			continue
		}
		kept := make([]recID, 0, len(rest)-d)
		var bytes int64
		for _, id := range rest {
			if d > 0 && !inFlight(id) {
				d--
				continue
			}
			kept = append(kept, id)
			bytes += int64(len(e.led.recs[id].body))
		}
		if bytes == want {
			p.mem = kept
			return
		}
	}
	e.violate("memory-gauge", "process %d: core reports %d records (%d bytes) in memory, which no spill or drop of the %d the ledger holds explains",
		p.n, n, want, len(p.mem))
}
