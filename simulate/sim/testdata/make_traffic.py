import socket, json, random, time, sys
random.seed(4)
path = sys.argv[1]
n = 0
def rec(extra=None):
    global n
    n += 1
    r = {"correlation_id": "rec-%05d" % n, "route": random.choice(["/", "/cart", "/api/items", "/checkout"]),
         "duration_us": random.randint(800, 900000), "spans": [{"name": "db", "us": random.randint(10, 5000)} for _ in range(random.randint(0, 6))],
         "pad": "x" * random.randint(0, 300)}
    if extra: r.update(extra)
    return json.dumps(r).encode()
conns = []
for i in range(5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(path); conns.append(s)
start = time.time()
for burst in range(24):
    for _ in range(random.randint(5, 20)):
        s = random.choice(conns)
        k = random.random()
        if k < 0.04:
            s.sendall(b"not json at all\n")
        elif k < 0.06:
            s.sendall(b"[1,2,3]\n")
        elif k < 0.08:
            a = rec(); b = rec()
            s.sendall(a[:len(a)//2] + b + b"\n")   # cut short and glued to the next
        elif k < 0.10:
            s.sendall(b"\n")
        else:
            data = rec() + b"\n"
            if random.random() < 0.3:
                cut = random.randint(1, len(data)-1)
                s.sendall(data[:cut]); time.sleep(0.01); s.sendall(data[cut:])
            else:
                s.sendall(data)
    time.sleep(random.uniform(0.05, 0.8))
    if burst in (7, 15):
        # a client dies in the middle of a record
        s = conns.pop(0)
        s.sendall(rec()[:40]); time.sleep(0.02); s.close()
        t = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); t.connect(path); conns.append(t)
for s in conns:
    s.close()
print("records generated", n, "seconds", round(time.time()-start, 1))
