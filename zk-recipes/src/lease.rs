//! kazoo's `NonBlockingLease` and `MultiNonBlockingLease`: a lease held for a duration by the
//! clock, not by a session, taken without waiting.
//!
//! Layout (kazoo's): under a kazoo [`Lock`] on `path`, the persistent node `path/lease_holder`
//! holds `{"version": 1, "holder": "<identifier>", "end": "YYYY-MM-DDTHH:MM:SS"}` (UTC). A
//! contender takes the lease if there is no holder, the holder is itself (a renewal), or the
//! holder's end has passed. kazoo compares the clocks of different machines, so they must be
//! roughly synchronised; a holder that crashes keeps the lease until its end.
//!
//! Loss: a lease ends at its end time, whatever happens to the session, so
//! [`NonBlockingLease::expired`] is the loss signal: a future that resolves at the end (on the
//! runtime's clock, which does not jump with the wall clock). The fencing token is the `czxid` of
//! the `lease_holder` node this holder created.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zk_client::{Client, Error};

use crate::lock::Lock;
use crate::protected::retry_loss;

/// The storage format kazoo writes (`_version`).
pub const LEASE_VERSION: i64 = 1;

/// kazoo's `NonBlockingLease`: the outcome of one attempt to take (or renew) a lease.
#[derive(Debug, Clone)]
pub struct NonBlockingLease {
    client: Client,
    obtained: bool,
    /// The end this holder wrote, when obtained.
    end: Option<SystemTime>,
    token: Option<i64>,
}

impl NonBlockingLease {
    /// Tries once to take the lease at `path` for `duration`, for `identifier` (reuse it to
    /// renew). Never waits for another holder: `is_obtained()` says whether it was taken.
    ///
    /// Errors with NoAuth and the session's errors (ConnectionLoss is retried).
    pub async fn obtain(
        client: &Client,
        path: &str,
        duration: Duration,
        identifier: &str,
    ) -> Result<NonBlockingLease, Error> {
        NonBlockingLease::obtain_at(client, path, duration, identifier, SystemTime::now()).await
    }

    /// [`obtain`](Self::obtain) with the wall clock's reading given (kazoo's `utcnow`), for
    /// tests.
    ///
    /// Errors as [`obtain`](Self::obtain).
    pub async fn obtain_at(
        client: &Client,
        path: &str,
        duration: Duration,
        identifier: &str,
        now: SystemTime,
    ) -> Result<NonBlockingLease, Error> {
        let path = path.trim_end_matches('/');
        client.ensure_path(path).await?;
        let holder_path = format!("{path}/lease_holder");
        let mut lock = Lock::new(client, path, identifier);
        lock.acquire().await?;
        let result = take(client, &holder_path, duration, identifier, now).await;
        // Dropping `lock` would send the delete too; awaiting it keeps the order plain.
        let _ = lock.release().await;
        let (end, token) = match result? {
            Some((end, token)) => (Some(end), Some(token)),
            None => (None, None),
        };
        Ok(NonBlockingLease {
            client: client.clone(),
            obtained: end.is_some(),
            end,
            token,
        })
    }

    /// Whether the lease was obtained (kazoo's truth value).
    pub fn is_obtained(&self) -> bool {
        self.obtained
    }

    /// The end of the lease this holder wrote, when obtained.
    pub fn end(&self) -> Option<SystemTime> {
        self.end
    }

    /// The fencing token: the `czxid` of the `lease_holder` node written for this holder.
    pub fn fencing_token(&self) -> Option<i64> {
        self.token
    }

    /// Whether the lease is still this holder's at `now`.
    pub fn is_held_at(&self, now: SystemTime) -> bool {
        self.end.is_some_and(|end| now < end)
    }

    /// Resolves when the lease ends (at once if it was not obtained or has ended): the holder's
    /// loss signal.
    pub fn expired(&self) -> impl Future<Output = ()> + Send + 'static {
        let left = self
            .end
            .and_then(|end| end.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::ZERO);
        let rt = self.client.runtime().clone();
        async move {
            let mut timer = rt.timer(rt.now() + left);
            std::future::poll_fn(|cx| timer.poll_fire(cx)).await
        }
    }
}

/// kazoo's `MultiNonBlockingLease`: one of `count` leases `path/0` .. `path/<count-1>`, tried in
/// order.
#[derive(Debug, Clone)]
pub struct MultiNonBlockingLease {
    lease: Option<NonBlockingLease>,
    index: Option<usize>,
}

impl MultiNonBlockingLease {
    /// Tries the leases in order and keeps the first obtained.
    ///
    /// Errors as [`NonBlockingLease::obtain`].
    pub async fn obtain(
        client: &Client,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: &str,
    ) -> Result<MultiNonBlockingLease, Error> {
        MultiNonBlockingLease::obtain_at(
            client,
            count,
            path,
            duration,
            identifier,
            SystemTime::now(),
        )
        .await
    }

    /// [`obtain`](Self::obtain) with the wall clock's reading given, for tests.
    ///
    /// Errors as [`NonBlockingLease::obtain`].
    pub async fn obtain_at(
        client: &Client,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: &str,
        now: SystemTime,
    ) -> Result<MultiNonBlockingLease, Error> {
        let path = path.trim_end_matches('/');
        for i in 0..count {
            let lease = NonBlockingLease::obtain_at(
                client,
                &format!("{path}/{i}"),
                duration,
                identifier,
                now,
            )
            .await?;
            if lease.is_obtained() {
                return Ok(MultiNonBlockingLease {
                    lease: Some(lease),
                    index: Some(i),
                });
            }
        }
        Ok(MultiNonBlockingLease {
            lease: None,
            index: None,
        })
    }

    /// Whether one of the leases was obtained.
    pub fn is_obtained(&self) -> bool {
        self.lease.is_some()
    }

    /// Which lease (`path/<index>`) was obtained.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// The lease obtained.
    pub fn lease(&self) -> Option<&NonBlockingLease> {
        self.lease.as_ref()
    }
}

/// Under the lock: takes the lease if it is free, ours, or over. `Some((end, czxid))` if taken.
async fn take(
    client: &Client,
    holder_path: &str,
    duration: Duration,
    identifier: &str,
    now: SystemTime,
) -> Result<Option<(SystemTime, i64)>, Error> {
    let now_secs = secs_of(now);
    match retry_loss(|| client.get_data(holder_path)).await {
        Ok((raw, _)) => {
            let Some(current) = decode(&raw) else {
                // Not kazoo's format (or another version): leave it to whoever wrote it, as
                // kazoo does for a newer version.
                return Ok(None);
            };
            if current.version != LEASE_VERSION {
                return Ok(None);
            }
            if current.holder != identifier && now_secs < current.end {
                return Ok(None);
            }
            match retry_loss(|| client.delete(holder_path)).await {
                Ok(()) | Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::NoNode { .. }) => {}
        Err(e) => return Err(e),
    }
    let end = now_secs.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 2));
    let data = format!(
        "{{\"version\": {LEASE_VERSION}, \"holder\": {}, \"end\": \"{}\"}}",
        json_string(identifier),
        format_utc(end)
    );
    let (_, stat) = client.create(holder_path, data).with_stat().await?;
    let end_time = if end >= 0 {
        UNIX_EPOCH + Duration::from_secs(end as u64)
    } else {
        UNIX_EPOCH
    };
    Ok(Some((end_time, stat.czxid)))
}

/// Whole seconds since the epoch (negative before it), as kazoo's format keeps only seconds.
fn secs_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX) - 1,
    }
}

/// The lease record kazoo writes.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    version: i64,
    holder: String,
    /// Seconds since the epoch.
    end: i64,
}

/// Reads kazoo's record: a flat JSON object with `version` (number), `holder` and `end`
/// (strings). Anything else is `None`.
fn decode(raw: &[u8]) -> Option<Record> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut p = JsonReader {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    p.eat(b'{')?;
    let (mut version, mut holder, mut end) = (None, None, None);
    loop {
        p.ws();
        if p.peek()? == b'}' {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        match key.as_str() {
            "version" => version = Some(p.number()?),
            "holder" => holder = Some(p.string()?),
            "end" => end = Some(parse_utc(&p.string()?)?),
            _ => p.skip_value()?,
        }
        p.ws();
        match p.peek()? {
            b',' => p.i += 1,
            b'}' => break,
            _ => return None,
        }
    }
    Some(Record {
        version: version?,
        holder: holder?,
        end: end?,
    })
}

/// Just enough JSON for kazoo's record.
struct JsonReader<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonReader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.i += 1)
    }
    fn number(&mut self) -> Option<i64> {
        let start = self.i;
        while self.peek().is_some_and(|b| b == b'-' || b.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            let mut cp = u32::from_str_radix(hex, 16).ok()?;
                            // A surrogate pair, as json.dumps writes characters beyond the BMP.
                            if (0xd800..0xdc00).contains(&cp) {
                                self.eat(b'\\')?;
                                self.eat(b'u')?;
                                let hex =
                                    std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                                self.i += 4;
                                let low = u32::from_str_radix(hex, 16).ok()?;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (low.checked_sub(0xdc00)?);
                            }
                            out.push(char::from_u32(cp)?);
                        }
                        _ => return None,
                    }
                }
                _ => {
                    // Copy the whole UTF-8 sequence starting here.
                    let start = self.i - 1;
                    let len = match b {
                        0x00..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        _ => 4,
                    };
                    out.push_str(std::str::from_utf8(self.s.get(start..start + len)?).ok()?);
                    self.i = start + len;
                }
            }
        }
    }
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            _ => {
                while self.peek().is_some_and(|b| b != b',' && b != b'}') {
                    self.i += 1;
                }
                Some(())
            }
        }
    }
}

/// A JSON string literal, escaped as Python's `json.dumps` does (non-ASCII as `\uXXXX`).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%Y-%m-%dT%H:%M:%S` in UTC for seconds since the epoch.
fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parses `%Y-%m-%dT%H:%M:%S` (UTC) to seconds since the epoch.
fn parse_utc(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let mut t = time.splitn(3, ':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Howard Hinnant's days-from-civil: days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_utc(1_764_633_599), "2025-12-01T23:59:59");
        for s in [0i64, 59, 86_399, 951_782_400, 4_102_444_800, 1_764_633_599] {
            assert_eq!(parse_utc(&format_utc(s)), Some(s));
        }
        assert_eq!(parse_utc("2025-13-01T00:00:00"), None);
        assert_eq!(parse_utc("garbage"), None);
    }

    #[test]
    fn records_as_kazoo_writes_them() {
        // What Python's json.dumps writes for kazoo's dict.
        let raw = br#"{"version": 1, "holder": "host \u00e9 \"x\"", "end": "2025-12-01T23:59:59"}"#;
        assert_eq!(
            decode(raw),
            Some(Record {
                version: 1,
                holder: "host é \"x\"".into(),
                end: 1_764_633_599
            })
        );
        assert_eq!(json_string("host é \"x\""), r#""host \u00e9 \"x\"""#);
        assert_eq!(json_string("😀"), r#""\ud83d\ude00""#);
        assert_eq!(decode(json_string("😀").as_bytes()), None);
        let s = format!(
            "{{\"holder\": {}, \"version\": 1, \"end\": \"1970-01-01T00:00:10\"}}",
            json_string("😀")
        );
        assert_eq!(
            decode(s.as_bytes()).map(|r| (r.holder, r.end)),
            Some(("😀".into(), 10))
        );
        assert_eq!(decode(b"not json"), None);
        assert_eq!(decode(b"{\"version\": 1}"), None);
    }
}
