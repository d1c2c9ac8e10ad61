"""Drives kazoo (Debian's python3-kazoo) for tests/client_kazoo.rs, one command per stdin line.

Run as `/usr/bin/python3 driver.py`. The line protocol, space-separated (paths never contain
spaces; byte strings are `x` followed by lowercase hex, `-` is None):

  request:  <seq> <command> <args...>
  reply:    r <seq> ok <fields...>
            r <seq> err <ExceptionClass> <message...>
  DataWatch items, at any time:  w <tag> <data> <version>     (data and version `-` when missing)

Commands:
  start <hosts[/chroot]>            stop any current client, start a new one -> ok <session id>
  stop                              stop and close the client (its ephemerals go)
  create <path> <data> <p|e|s|es>   -> ok <created path>
  set <path> <data> <version>       -> ok <new version> <mzxid>
  get <path>                        -> ok <data> <version> <ephemeralOwner> <dataLength> <mzxid>
                                       or ok none
  exists <path>                     -> ok <version> <ephemeralOwner> <mzxid>, or ok none
  children <path>                   -> ok <sorted names...>
  delete <path> <version> [r]       -> ok            (`r`: recursive)
  txn <op>...                       -> ok <result>...  (kazoo's transaction().commit())
       op:     create:<path>:<data>[:<p|e|s|es>] | set:<path>:<data>:<version>
             | check:<path>:<version> | delete:<path>:<version>
       result: created:<path> | stat:<version> | true | error:<ExceptionClass>
  datawatch <path> <tag>            register a kazoo DataWatch printing `w <tag> ...` items -> ok
  quit                              exit

Anything written to stderr (kazoo's log, tracebacks) is shown by the Rust side on failure.
"""

import sys
import threading

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError
    from kazoo.protocol.states import ZnodeStat
except ImportError as e:  # The Rust side names scripts/setup-zookeeper.
    sys.stderr.write("kazoo is not importable: %s\n" % e)
    sys.exit(3)

_out = threading.Lock()


def emit(*fields):
    line = " ".join(str(f) for f in fields) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def enc(data):
    return "-" if data is None else "x" + data.hex()


def dec(token):
    if token == "-":
        return None
    if not token.startswith("x"):
        raise ValueError("bad data token %r" % token[:20])
    return bytes.fromhex(token[1:])


def flags(token):
    if token not in ("p", "e", "s", "es"):
        raise ValueError("bad create flags %r" % token)
    return {"ephemeral": "e" in token, "sequence": "s" in token}


class Driver(object):
    def __init__(self):
        self.client = None

    def stop(self):
        if self.client is not None:
            client, self.client = self.client, None
            client.stop()
            client.close()

    def cmd_start(self, hosts):
        self.stop()
        client = KazooClient(hosts=hosts, timeout=10.0)
        client.start(timeout=30)
        self.client = client
        return [client.client_id[0]]

    def cmd_stop(self):
        self.stop()
        return []

    def cmd_create(self, path, data, how):
        return [self.client.create(path, dec(data), **flags(how))]

    def cmd_set(self, path, data, version):
        stat = self.client.set(path, dec(data), version=int(version))
        return [stat.version, stat.mzxid]

    def cmd_get(self, path):
        try:
            data, st = self.client.get(path)
        except NoNodeError:
            return ["none"]
        return [enc(data), st.version, st.ephemeralOwner, st.dataLength, st.mzxid]

    def cmd_exists(self, path):
        st = self.client.exists(path)
        if st is None:
            return ["none"]
        return [st.version, st.ephemeralOwner, st.mzxid]

    def cmd_children(self, path):
        return sorted(self.client.get_children(path))

    def cmd_delete(self, path, version, *rest):
        self.client.delete(path, version=int(version), recursive=rest == ("r",))
        return []

    def cmd_txn(self, *ops):
        t = self.client.transaction()
        for op in ops:
            parts = op.split(":")
            kind = parts[0]
            if kind == "create":
                how = parts[3] if len(parts) > 3 else "p"
                t.create(parts[1], dec(parts[2]), **flags(how))
            elif kind == "set":
                t.set_data(parts[1], dec(parts[2]), version=int(parts[3]))
            elif kind == "check":
                t.check(parts[1], int(parts[2]))
            elif kind == "delete":
                t.delete(parts[1], version=int(parts[2]))
            else:
                raise ValueError("bad transaction op %r" % op)
        results = []
        for r in t.commit():
            if isinstance(r, Exception):
                results.append("error:" + type(r).__name__)
            elif isinstance(r, ZnodeStat):
                results.append("stat:%d" % r.version)
            elif r is True:
                results.append("true")
            elif isinstance(r, str):
                results.append("created:" + r)
            else:
                results.append("unknown:" + repr(r).replace(" ", "_"))
        return results

    def cmd_datawatch(self, path, tag):
        def seen(data, stat, event=None):
            emit("w", tag, enc(data), "-" if stat is None else stat.version)

        self.client.DataWatch(path, seen)
        return []


def main():
    driver = Driver()
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
        try:
            result = getattr(driver, "cmd_" + command)(*args)
            emit("r", seq, "ok", *result)
        except Exception as e:  # Reported to the Rust side, which decides.
            msg = str(e).replace("\n", " ")[:300]
            emit("r", seq, "err", type(e).__name__, msg or "-")
    try:
        driver.stop()
    except Exception:
        pass


if __name__ == "__main__":
    main()
