//! Ensemble tracking (Curator's `EnsembleTracker`): with [`ClientBuilder::track_ensemble`] on, a
//! background task reads `/zookeeper/config` after every (re)connect and whenever it changes, and
//! gives the servers it names to [`Client::set_hosts`], so a session follows the ensemble through
//! a `reconfig` that moves it to other hosts.
//!
//! [`ClientBuilder::track_ensemble`]: crate::ClientBuilder::track_ensemble

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use zk_core::proto::{PathWatchRequest, Request, Response};
use zk_core::session::SubmitOptions;
use zk_core::{Error, HostAddr, LostReason, SessionState};

use crate::client::{Client, StateChanges};
use crate::ops::watch_of;
use crate::watch::Watch;

/// The client addresses of every server (participants and observers) of a dynamic configuration
/// as `/zookeeper/config` holds it: lines `server.N=host:quorumPort:electionPort[:role];[clientHost:]clientPort`
/// and `version=N`. A client host of `0.0.0.0` (or `::`) means "every interface" and is replaced
/// by the server's own host, as Curator does; a server without a client part (`;...`) has no
/// client port and is left out. Multi-address quorum parts (`a:1:2|b:1:2`) use the first address.
/// Lines other than `server.N=` (`version=`, blank) are skipped.
///
/// Errors with [`Error::InvalidArgument`] naming the line when a `server.N` line is malformed
/// (bad id, missing ports, unknown role, bad client port), and when no server has a client
/// address.
pub fn parse_ensemble_config(data: &[u8]) -> Result<Vec<HostAddr>, Error> {
    let text = std::str::from_utf8(data)
        .map_err(|_| Error::InvalidArgument("the ensemble config is not UTF-8".into()))?;
    let mut hosts = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad(line, "no '='"));
        };
        let Some(id) = key.trim().strip_prefix("server.") else {
            continue;
        };
        if id.parse::<u64>().is_err() {
            return Err(bad(line, "the server id is not a number"));
        }
        if let Some(h) = parse_server(value.trim()).map_err(|why| bad(line, why))? {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    if hosts.is_empty() {
        return Err(Error::InvalidArgument(
            "the ensemble config names no server with a client address".into(),
        ));
    }
    Ok(hosts)
}

fn bad(line: &str, why: &str) -> Error {
    Error::InvalidArgument(format!("ensemble config line {line:?}: {why}"))
}

/// One `server.N` value: its client address, or None when it has no client part.
fn parse_server(value: &str) -> Result<Option<HostAddr>, &'static str> {
    let (quorum, client) = match value.split_once(';') {
        Some((q, c)) => (q.trim(), Some(c.trim())),
        None => (value, None),
    };
    // 3.6+ may list several quorum addresses separated by '|'; they share the host's role.
    let first = quorum.split('|').next().unwrap_or_default().trim();
    let (server_host, rest) = split_host(first)?;
    let mut parts = rest.split(':');
    for _ in 0..2 {
        match parts.next() {
            Some(p) if p.parse::<u16>().is_ok() => {}
            _ => return Err("a quorum part needs host:quorumPort:electionPort"),
        }
    }
    match parts.next() {
        None | Some("participant") | Some("observer") => {}
        Some(_) => return Err("the role is neither participant nor observer"),
    }
    if parts.next().is_some() {
        return Err("too many ':' in the quorum part");
    }
    let Some(client) = client.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    // `[clientHost:]clientPort`: a bare port listens on every interface.
    let (client_host, port) = match client.parse::<u16>() {
        Ok(port) => (None, port),
        Err(_) => {
            let (h, rest) = split_host(client)?;
            let port = rest.parse::<u16>().map_err(|_| "a bad client port")?;
            (Some(h), port)
        }
    };
    let wildcard = |h: &str| h == "0.0.0.0" || h == "::" || h == "0:0:0:0:0:0:0:0";
    let host = match client_host {
        Some(h) if !wildcard(h) => h,
        _ => server_host,
    };
    if port == 0 {
        return Err("client port 0");
    }
    Ok(Some(HostAddr::new(host, port)))
}

/// `host:rest` or `[v6]:rest` into the host (no brackets) and what follows the ':'.
fn split_host(s: &str) -> Result<(&str, &str), &'static str> {
    let (host, rest) = if let Some(r) = s.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or("a '[' without ']'")?;
        (h, after.strip_prefix(':').ok_or("no ':' after ']'")?)
    } else {
        s.split_once(':').ok_or("no ':' after the host")?
    };
    if host.is_empty() {
        return Err("an empty host");
    }
    Ok((host, rest))
}

/// The tracker's task: runs until the client's driver stops (the session closed, every user
/// handle dropped) or `restart()` replaces the session it was started for (`generation`;
/// restart starts a tracker of its own). `client` is a background handle, so it never keeps
/// the session open.
pub(crate) async fn track(client: Client, generation: u64) {
    let mut states = client.state_changes();
    let replaced = |client: &Client| client.engine.generation() != generation;
    loop {
        if !client.is_connected() && !states.next_connected().await {
            return;
        }
        if replaced(&client) {
            return;
        }
        let watch = match read_config(&client).await {
            // restart() came between the check above and the read: the new tracker applies it.
            Ok(_) if replaced(&client) => return,
            Ok((data, watch)) => {
                apply(&client, &data);
                Some(watch)
            }
            // Every handle dropped or close(): the tracker's work is over.
            Err(Error::Closed) => return,
            Err(e) => {
                // Standalone servers have no dynamic config; NoAuth, a lost connection: try
                // again after the next (re)connect rather than spinning.
                tracing::debug!(error = %e, "ensemble tracking: cannot read /zookeeper/config");
                None
            }
        };
        // Read again when the config changes, or after a reconnect (Curator does both: a change
        // made while disconnected may not fire a watch armed on another server).
        match (Either {
            watch,
            states: &mut states,
        })
        .await
        {
            Woke::Changed | Woke::Reconnected => {}
            Woke::Ended => return,
        }
    }
}

/// Reads `/zookeeper/config` with a watch, past the chroot if there is one (the session keys a
/// watch outside the chroot apart from client paths, so its notification still arrives).
async fn read_config(client: &Client) -> Result<(bytes::Bytes, Watch), Error> {
    let req = Request::GetData(PathWatchRequest {
        path: "/zookeeper/config".into(),
        watch: true,
    });
    let opts = SubmitOptions {
        absolute_path: true,
        ..SubmitOptions::default()
    };
    let (r, w) = client.send_with(req, opts).await;
    match r? {
        Response::Data { data, .. } => Ok((data.unwrap_or_default(), watch_of(&client.engine, w)?)),
        other => Err(Error::Protocol(format!(
            "unexpected reply to getData(/zookeeper/config): {other:?}"
        ))),
    }
}

/// Gives the config's servers to `set_hosts` when they differ from the current list (in any
/// order). A malformed config is logged and ignored.
fn apply(client: &Client, data: &[u8]) {
    let new = match parse_ensemble_config(data) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "ensemble tracking: ignoring a config it cannot read");
            return;
        }
    };
    let mut current = client.hosts();
    let mut sorted = new.clone();
    current.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
    sorted.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
    if current == sorted {
        return;
    }
    let list = new
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(hosts = %list, "ensemble tracking: the ensemble changed");
    if let Err(e) = client.set_hosts(&list) {
        tracing::warn!(error = %e, hosts = %list, "ensemble tracking: set_hosts failed");
    }
}

enum Woke {
    /// The config watch fired (or ended with the session's connection: read again).
    Changed,
    /// A new connection after one was lost.
    Reconnected,
    /// The state stream ended (the driver stopped) or the session was closed.
    Ended,
}

/// Waits for the first of: the watch firing, a reconnect, the end of the state stream.
struct Either<'a> {
    watch: Option<Watch>,
    states: &'a mut StateChanges,
}

impl Future for Either<'_> {
    type Output = Woke;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Woke> {
        if let Some(w) = &mut self.watch {
            if let Poll::Ready(r) = Pin::new(w).poll(cx) {
                self.watch = None;
                return Poll::Ready(match r {
                    Err(Error::Closed) => Woke::Ended,
                    // An event, or an expiry (a renewed session needs a fresh read).
                    _ => Woke::Changed,
                });
            }
        }
        loop {
            match Pin::new(&mut *self.states).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                // The stream ends when the driver stops; close() (also restart()'s) ends the
                // session this tracker was for: restart() starts another.
                Poll::Ready(None) | Poll::Ready(Some(SessionState::Lost(LostReason::Closed))) => {
                    return Poll::Ready(Woke::Ended)
                }
                Poll::Ready(Some(s)) if s.is_connected() => return Poll::Ready(Woke::Reconnected),
                Poll::Ready(Some(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(v: &[&str]) -> Vec<HostAddr> {
        v.iter().map(|s| HostAddr::parse(s).unwrap()).collect()
    }

    #[test]
    fn participants_and_observers_count() {
        let cfg = "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                   server.2=10.0.0.2:2888:3888:observer;10.0.1.2:2182\n\
                   server.3=zk3:2888:3888;2183\n\
                   version=100000003\n";
        assert_eq!(
            parse_ensemble_config(cfg.as_bytes()).unwrap(),
            hosts(&["10.0.0.1:2181", "10.0.1.2:2182", "zk3:2183"])
        );
    }

    #[test]
    fn ipv6_multi_address_and_no_client_port() {
        let cfg = "server.1=[::1]:2888:3888:participant;[::]:2181\n\
                   server.2=[fe80::2]:2888:3888|h2b:2888:3888;[fe80::9]:2181\n\
                   server.3=h3:2888:3888:participant\n";
        assert_eq!(
            parse_ensemble_config(cfg.as_bytes()).unwrap(),
            hosts(&["[::1]:2181", "[fe80::9]:2181"])
        );
    }

    #[test]
    fn malformed_configs_are_errors() {
        for cfg in [
            "",
            "version=1\n",
            "server.x=h:1:2;2181",
            "server.1=h:1;2181",
            "server.1=h:1:2:leader;2181",
            "server.1=h:1:2;h:notaport",
            "server.1=[::1:1:2;2181",
            "server.1=h:1:2:participant:9;2181",
            "garbage",
            "server.1=h:1:2",
        ] {
            assert!(
                parse_ensemble_config(cfg.as_bytes()).is_err(),
                "accepted {cfg:?}"
            );
        }
        assert!(parse_ensemble_config(&[0xff, 0xfe]).is_err());
    }
}
