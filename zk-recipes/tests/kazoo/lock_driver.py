"""Drives kazoo's Lock, Semaphore and Election for zk-recipes/tests/locks.rs and interop.rs, one
command per stdin line.

Run as `/usr/bin/python3 lock_driver.py <hosts>`. Every command runs on its own thread, so a
blocking acquire does not hold up the next command; replies are matched by sequence number.

  request:  <seq> <command> <args...>
  reply:    r <seq> ok <fields...>
            r <seq> err <ExceptionClass> <message...>
  event:    e <name> <what>

Commands (<name> names a recipe object kept by the driver):
  lock <name> <path> <identifier> [<pattern,pattern>]   kazoo Lock(path, identifier,
                                                         extra_lock_patterns) -> ok
  rlock <name> <path> <identifier>                      kazoo ReadLock -> ok
  wlock <name> <path> <identifier>                      kazoo WriteLock -> ok
  sem <name> <path> <identifier> <max_leases>           kazoo Semaphore -> ok
  acquire <name>                                        blocks until acquired -> ok
  release <name>                                        -> ok <True|False>
  contenders <name>                                     -> ok <identifiers...>
  holders <name>                                        Semaphore.lease_holders() -> ok <ids...>
  loop <name> <rounds> <holder dir> <max>   rounds of: acquire; create <holder dir>/<name>
                                            (ephemeral); count the holder dir's children
                                            (must be <= max); delete; release -> ok <rounds>
                                            or err Violation
  lease <path> <seconds> <identifier>       kazoo NonBlockingLease -> ok <True|False>
  elect <name> <path> <identifier>          kazoo Election -> ok (contenders <name> works on it)
  run <name> <log>                          Election.run(func): func logs "<identifier> gained"
                                            in <log>, emits `e <name> leading`, waits for
                                            `stepdown <name>`, logs "<identifier> end" -> ok
  stepdown <name>                           lets the leader's func return -> ok
  quit                                      exit

<log> is a znode directory holding a shared, totally ordered log: each entry is a persistent
sequential child `ev-<seq>` whose data is "<who> <what>", so hold intervals of several processes
are compared by the server's order, never by clocks.
"""

import sys
import threading

try:
    from kazoo.client import KazooClient
except ImportError as e:
    sys.stderr.write("kazoo is not importable: %s\n" % e)
    sys.exit(3)

_out = threading.Lock()


def emit(*fields):
    line = " ".join(str(f) for f in fields) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


class Violation(Exception):
    pass


class Driver(object):
    def __init__(self, hosts):
        self.client = KazooClient(hosts=hosts, timeout=10.0)
        self.client.start(timeout=30)
        self.objects = {}
        self.stepdowns = {}

    def cmd_lock(self, name, path, ident, patterns=""):
        extra = [p for p in patterns.split(",") if p]
        self.objects[name] = self.client.Lock(path, ident, extra_lock_patterns=extra)
        return []

    def cmd_rlock(self, name, path, ident):
        self.objects[name] = self.client.ReadLock(path, ident)
        return []

    def cmd_wlock(self, name, path, ident):
        self.objects[name] = self.client.WriteLock(path, ident)
        return []

    def cmd_sem(self, name, path, ident, max_leases):
        self.objects[name] = self.client.Semaphore(path, ident, max_leases=int(max_leases))
        return []

    def cmd_acquire(self, name):
        self.objects[name].acquire()
        return []

    def cmd_release(self, name):
        return [self.objects[name].release()]

    def cmd_contenders(self, name):
        return self.objects[name].contenders()

    def cmd_holders(self, name):
        return sorted(self.objects[name].lease_holders())

    def cmd_lease(self, path, seconds, ident):
        import datetime
        lease = self.client.NonBlockingLease(
            path, datetime.timedelta(seconds=int(seconds)), identifier=ident
        )
        return [bool(lease)]

    def log(self, log, entry):
        self.client.create(log + "/ev-", entry.encode(), sequence=True, makepath=True)

    def cmd_elect(self, name, path, ident):
        self.objects[name] = self.client.Election(path, ident)
        self.stepdowns[name] = (ident, threading.Event())
        return []

    def cmd_run(self, name, log):
        ident, stepdown = self.stepdowns[name]

        def lead():
            self.log(log, ident + " gained")
            emit("e", name, "leading")
            stepdown.wait()
            # The leader stops acting as one before kazoo deletes its node.
            self.log(log, ident + " end")

        self.objects[name].run(lead)
        return []

    def cmd_stepdown(self, name):
        self.stepdowns[name][1].set()
        return []

    def cmd_loop(self, name, rounds, holder_dir, most):
        obj = self.objects[name]
        for _ in range(int(rounds)):
            obj.acquire()
            try:
                mine = holder_dir + "/" + name
                self.client.create(mine, b"", ephemeral=True, makepath=True)
                n = len(self.client.get_children(holder_dir))
                if n > int(most):
                    raise Violation("%d holders at once" % n)
                self.client.delete(mine)
            finally:
                obj.release()
        return [rounds]


def run(driver, seq, command, args):
    try:
        result = getattr(driver, "cmd_" + command)(*args)
        emit("r", seq, "ok", *result)
    except Exception as e:  # Reported to the Rust side, which decides.
        msg = str(e).replace("\n", " ")[:300]
        emit("r", seq, "err", type(e).__name__, msg or "-")


def main():
    driver = Driver(sys.argv[1])
    emit("r", "0", "ok", "started")
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        fields = line.split()
        if not fields:
            continue
        seq, command, args = fields[0], fields[1], fields[2:]
        if command == "quit":
            emit("r", seq, "ok")
            break
        t = threading.Thread(target=run, args=(driver, seq, command, args))
        t.daemon = True
        t.start()
    try:
        driver.client.stop()
        driver.client.close()
    except Exception:
        pass


if __name__ == "__main__":
    main()
