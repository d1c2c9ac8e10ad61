// Drives Apache Curator's recipes for zk-recipes/tests/interop.rs, one command per stdin line,
// with the same line protocol as tests/kazoo/lock_driver.py, so the Rust harness (tests/common,
// `Peer`) drives both alike. Compiled by the harness with javac against the jars that
// scripts/setup-zookeeper copies from Maven Central (curator-recipes 5.9.0 and its runtime
// dependencies, among them the ZooKeeper 3.9 client, which also speaks to 3.8 servers).
//
//   java -cp <classes>:<curator lib>/* CuratorPeer <connect string>
//
//   request:  <seq> <command> <args...>
//   reply:    r <seq> ok <fields...>
//             r <seq> err <ExceptionClass> <message...>
//   event:    e <name> <what>            (a leader latch's listener, as it is called)
//
// Commands (<name> names a recipe object kept by the peer; <log> is a znode directory that
// holds a shared, totally ordered log: each entry is a persistent sequential child `ev-<seq>`
// whose data is "<who> <what>", so both sides' hold intervals can be compared by zxid order,
// never by clocks):
//   mutex <name> <path> <id>            InterProcessMutex whose nodes hold <id> -> ok
//   acquire <name>                      blocks until acquired -> ok
//   tryacquire <name> <ms>              acquire(ms) -> ok <true|false>
//   release <name>                      -> ok
//   participants <name>                 getParticipantNodes() -> ok <node names...>
//   mloop <name> <rounds> <log> <who>   rounds of: acquire; log "<who> start"; read the
//                                       lock's children; log "<who> end"; release -> ok <rounds>
//   latch <name> <path> <id> <log>      LeaderLatch(path, id), started; its listener logs
//                                       "<id> gained" and then emits `e <name> gained`, and
//                                       emits `e <name> notleader` -> ok
//   leader <name>                       getLeader().getId() -> ok <id, or - if none>
//   latchparts <name>                   getParticipants() -> ok <ids, leader first...>
//   hasleader <name>                    hasLeadership() -> ok <true|false>
//   close <name>                        logs "<id> end" if it logged "gained", then close() -> ok
//   count <name> <path> <seed>          SharedCount(path, seed), started -> ok
//   incr <name> <n>                     n times: trySetCount(v, v + 1) until it succeeds
//                                       -> ok <n> <attempts>
//   get <name>                          getCount() -> ok <count>
//   quit                                exit
//
// Every command runs on a thread of its own, so a blocking acquire does not hold up the next
// command, except that a mutex's acquire, tryacquire, release and mloop run on that mutex's own
// single thread: Curator's InterProcessMutex belongs to the thread that acquired it.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public final class CuratorPeer {
    private static final Object OUT = new Object();

    private final CuratorFramework client;
    private final Map<String, Mutex> mutexes = new ConcurrentHashMap<>();
    private final Map<String, Latch> latches = new ConcurrentHashMap<>();
    private final Map<String, SharedCount> counts = new ConcurrentHashMap<>();
    private final ExecutorService pool = Executors.newCachedThreadPool(daemon());

    /** A reply or an event, one whole line at a time. */
    static void emit(String... fields) {
        synchronized (OUT) {
            System.out.println(String.join(" ", fields));
            System.out.flush();
        }
    }

    static java.util.concurrent.ThreadFactory daemon() {
        return r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        };
    }

    /** Curator's mutex whose node data is the contender's id (kazoo-style contenders()). */
    static final class IdMutex extends InterProcessMutex {
        private final byte[] id;

        IdMutex(CuratorFramework client, String path, String id) {
            super(client, path);
            this.id = id.getBytes(StandardCharsets.UTF_8);
        }

        @Override
        protected byte[] getLockNodeBytes() {
            return id;
        }
    }

    static final class Mutex {
        final IdMutex mutex;
        final String path;
        final ExecutorService thread = Executors.newSingleThreadExecutor(daemon());

        Mutex(IdMutex mutex, String path) {
            this.mutex = mutex;
            this.path = path;
        }
    }

    final class Latch implements LeaderLatchListener {
        final String name;
        final String id;
        final String log;
        LeaderLatch latch;
        boolean logged;
        boolean closed;

        Latch(String name, String id, String log) {
            this.name = name;
            this.id = id;
            this.log = log;
        }

        @Override
        public void isLeader() {
            synchronized (this) {
                if (closed) {
                    return;
                }
                try {
                    log(log, id + " gained");
                    logged = true;
                } catch (Exception e) {
                    emit("e", name, "logfailed", e.getClass().getSimpleName());
                    return;
                }
            }
            emit("e", name, "gained");
        }

        @Override
        public void notLeader() {
            emit("e", name, "notleader");
        }
    }

    CuratorPeer(String connect) throws Exception {
        client = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(10_000)
                .connectionTimeoutMs(30_000)
                .retryPolicy(new ExponentialBackoffRetry(100, 10))
                .build();
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no connection to " + connect + " in 30 s");
        }
    }

    void log(String dir, String entry) throws Exception {
        client.create()
                .creatingParentsIfNeeded()
                .withMode(CreateMode.PERSISTENT_SEQUENTIAL)
                .forPath(dir + "/ev-", entry.getBytes(StandardCharsets.UTF_8));
    }

    static String name(String path) {
        return path.substring(path.lastIndexOf('/') + 1);
    }

    Mutex mutex(String name) {
        Mutex m = mutexes.get(name);
        if (m == null) {
            throw new IllegalArgumentException("no mutex " + name);
        }
        return m;
    }

    Latch latch(String name) {
        Latch l = latches.get(name);
        if (l == null) {
            throw new IllegalArgumentException("no latch " + name);
        }
        return l;
    }

    SharedCount count(String name) {
        SharedCount c = counts.get(name);
        if (c == null) {
            throw new IllegalArgumentException("no count " + name);
        }
        return c;
    }

    List<String> run(String cmd, String[] a) throws Exception {
        List<String> out = new ArrayList<>();
        switch (cmd) {
            case "mutex":
                mutexes.put(a[0], new Mutex(new IdMutex(client, a[1], a[2]), a[1]));
                break;
            case "acquire":
                mutex(a[0]).mutex.acquire();
                break;
            case "tryacquire":
                out.add(Boolean.toString(
                        mutex(a[0]).mutex.acquire(Long.parseLong(a[1]), TimeUnit.MILLISECONDS)));
                break;
            case "release":
                mutex(a[0]).mutex.release();
                break;
            case "participants": {
                for (String p : mutex(a[0]).mutex.getParticipantNodes()) {
                    out.add(name(p));
                }
                break;
            }
            case "mloop": {
                Mutex m = mutex(a[0]);
                int rounds = Integer.parseInt(a[1]);
                for (int i = 0; i < rounds; i++) {
                    m.mutex.acquire();
                    try {
                        log(a[2], a[3] + " start");
                        // Hold it for a round trip, so the other contenders queue up meanwhile.
                        client.getChildren().forPath(m.path);
                        log(a[2], a[3] + " end");
                    } finally {
                        m.mutex.release();
                    }
                }
                out.add(a[1]);
                break;
            }
            case "latch": {
                Latch l = new Latch(a[0], a[2], a[3]);
                l.latch = new LeaderLatch(client, a[1], a[2]);
                l.latch.addListener(l);
                latches.put(a[0], l);
                l.latch.start();
                break;
            }
            case "leader": {
                String id = latch(a[0]).latch.getLeader().getId();
                out.add(id.isEmpty() ? "-" : id);
                break;
            }
            case "latchparts": {
                Collection<Participant> ps = latch(a[0]).latch.getParticipants();
                for (Participant p : ps) {
                    out.add(p.getId());
                }
                break;
            }
            case "hasleader":
                out.add(Boolean.toString(latch(a[0]).latch.hasLeadership()));
                break;
            case "close": {
                Latch l = latch(a[0]);
                // The application stops acting as leader before it leaves: its interval ends
                // here, before Curator deletes the node (which is what lets the next one lead).
                synchronized (l) {
                    l.closed = true;
                    if (l.logged) {
                        log(l.log, l.id + " end");
                    }
                }
                l.latch.close();
                break;
            }
            case "count": {
                SharedCount c = new SharedCount(client, a[1], Integer.parseInt(a[2]));
                c.start();
                counts.put(a[0], c);
                break;
            }
            case "incr": {
                SharedCount c = count(a[0]);
                int n = Integer.parseInt(a[1]);
                long attempts = 0;
                for (int i = 0; i < n; i++) {
                    while (true) {
                        attempts++;
                        VersionedValue<Integer> v = c.getVersionedValue();
                        if (c.trySetCount(v, v.getValue() + 1)) {
                            break;
                        }
                    }
                }
                out.add(a[1]);
                out.add(Long.toString(attempts));
                break;
            }
            case "get":
                out.add(Integer.toString(count(a[0]).getCount()));
                break;
            default:
                throw new IllegalArgumentException("unknown command " + cmd);
        }
        return out;
    }

    void dispatch(String seq, String cmd, String[] args) {
        Runnable task = () -> {
            try {
                List<String> out = run(cmd, args);
                List<String> line = new ArrayList<>(List.of("r", seq, "ok"));
                line.addAll(out);
                emit(line.toArray(new String[0]));
            } catch (Throwable e) { // Reported to the Rust side, which decides.
                String msg = String.valueOf(e.getMessage()).replace('\n', ' ');
                if (msg.length() > 300) {
                    msg = msg.substring(0, 300);
                }
                emit("r", seq, "err", e.getClass().getSimpleName(), msg);
            }
        };
        boolean owned = cmd.equals("acquire") || cmd.equals("tryacquire")
                || cmd.equals("release") || cmd.equals("mloop");
        Mutex m = owned && args.length > 0 ? mutexes.get(args[0]) : null;
        (m != null ? m.thread : pool).execute(task);
    }

    public static void main(String[] argv) throws Exception {
        CuratorPeer peer = new CuratorPeer(argv[0]);
        emit("r", "0", "ok", "started");
        java.io.BufferedReader in = new java.io.BufferedReader(
                new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 2) {
                continue;
            }
            if (f[1].equals("quit")) {
                emit("r", f[0], "ok");
                break;
            }
            String[] args = new String[f.length - 2];
            System.arraycopy(f, 2, args, 0, args.length);
            peer.dispatch(f[0], f[1], args);
        }
        // stdin closed: leave, closing the session (its ephemeral nodes go with it).
        peer.client.close();
        System.exit(0);
    }
}
