//! The interactive shell: zkCli's prompt (`[zk: host:port(CONNECTED) 3] `), rustyline's line
//! editing, history in `~/.zk_history`, and Tab completion of commands and of paths (read from the
//! server). Watch events and connection changes print above the prompt as they happen.
//!
//! When stdin is not a terminal, lines are read as they come, with no prompt, so a script can
//! drive the shell through a pipe; the exit code is that of the last command.
//!
//! Threads: the tokio runtime runs on the main thread the whole time (so the session keeps its
//! heartbeats while the user thinks); a reader thread owns the terminal and hands each line over.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter, Helper};
use serde_json::json;
use tokio::sync::mpsc;
use zk_tokio::Client;

use crate::args::GlobalOpts;
use crate::commands;
use crate::error::{CliError, EXIT_OK};
use crate::exec::{self, Ctx, Flow, Mode, Watches};
use crate::output::{self, Out};

/// How long Tab waits for the server's list of children.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(2);

/// What the reader thread hands over.
enum Input {
    Line(String),
    /// Ctrl-C at the prompt: drop the line.
    Interrupted,
    /// Ctrl-D or the end of stdin.
    Eof,
}

/// What the main thread asks of the reader thread.
enum Ask {
    /// Read a line with this prompt.
    Line(String),
    /// Save the history and stop.
    Stop,
}

/// The session the completer asks for children (the shell's `connect` replaces it).
type SharedClient = Arc<Mutex<Option<Client>>>;

/// Runs the shell until `quit`, Ctrl-D or the end of stdin; returns the exit code.
pub fn run(rt: &tokio::runtime::Runtime, opts: GlobalOpts) -> i32 {
    let json = opts.json;
    let client = match rt.block_on(exec::connect(&opts, &opts.server.clone())) {
        Ok(c) => c,
        Err(e) => return crate::report(&e, json),
    };
    let interactive = std::io::stdin().is_terminal();
    let shared: SharedClient = Arc::new(Mutex::new(Some(client.clone())));
    let (ask_tx, ask_rx) = std_mpsc::channel::<Ask>();
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Input>();
    let (printer, reader) = if interactive {
        match start_editor(rt.handle().clone(), shared.clone(), ask_rx, input_tx) {
            Ok(x) => x,
            Err(e) => {
                return crate::report(
                    &CliError::Other {
                        message: format!("cannot open the terminal: {e}"),
                        code: crate::error::EXIT_OTHER,
                    },
                    json,
                )
            }
        }
    } else {
        (None, start_plain_reader(ask_rx, input_tx))
    };
    let out = Out::with_printer(json, printer);
    if interactive {
        let id = client.client_id().map(|s| s.id).unwrap_or(0);
        let host = client
            .current_host()
            .map(|h| h.to_string())
            .unwrap_or_default();
        eprintln!(
            "Connected to {host}, session 0x{id:x}. Type 'help' for the commands, Tab to complete, \
             Ctrl-D to leave."
        );
    }
    let code = rt.block_on(async {
        let mut ctx = Ctx {
            opts,
            client: Some(client),
            out: out.clone(),
            mode: Mode::Shell,
            watches: Watches::default(),
        };
        let mut states = spawn_state_printer(ctx.client.as_ref(), &out);
        let mut count = 0u64;
        let mut last = EXIT_OK;
        loop {
            let state = ctx
                .client
                .as_ref()
                .map(|c| output::prompt_state(c.state()))
                .unwrap_or("CLOSED");
            let prompt = format!("[zk: {}({state}) {count}] ", ctx.opts.server);
            if ask_tx.send(Ask::Line(prompt)).is_err() {
                break;
            }
            let input = loop {
                tokio::select! {
                    i = input_rx.recv() => break i,
                    // Ctrl-C while a script is piped in ends the shell. (At an interactive
                    // prompt the terminal is raw, so Ctrl-C arrives as a key instead.)
                    _ = crate::interrupted() => {
                        if !interactive {
                            last = crate::error::EXIT_INTERRUPTED;
                            break None;
                        }
                    }
                }
            };
            let line = match input {
                Some(Input::Line(l)) => l,
                Some(Input::Interrupted) => continue,
                Some(Input::Eof) | None => break,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            count += 1;
            let words = match commands::split_command_line(line) {
                Ok(w) => w,
                Err(m) => {
                    last = crate::report(&CliError::bad_input(m), json);
                    continue;
                }
            };
            let cmd = match commands::parse(&words) {
                Ok(c) => c,
                Err(e) => {
                    last = crate::report(&e, json);
                    continue;
                }
            };
            let streaming = cmd.interrupt_is_success(Mode::Shell);
            let reconnect = cmd.changes_session();
            let result = tokio::select! {
                r = ctx.run(cmd) => r,
                _ = crate::interrupted() => Err(CliError::Interrupted),
            };
            if reconnect {
                if let Ok(mut g) = shared.lock() {
                    *g = ctx.client.clone();
                }
                if let Some(t) = states.take() {
                    t.abort();
                }
                states = spawn_state_printer(ctx.client.as_ref(), &out);
            }
            last = match result {
                Ok(Flow::Quit) => {
                    last = EXIT_OK;
                    break;
                }
                Ok(Flow::Continue) => EXIT_OK,
                Err(CliError::Interrupted) if streaming => EXIT_OK,
                Err(e) => crate::report(&e, json),
            };
        }
        ctx.watches.clear();
        if let Some(t) = states.take() {
            t.abort();
        }
        if let Ok(mut g) = shared.lock() {
            *g = None;
        }
        if let Some(c) = ctx.client.take() {
            c.close().await;
        }
        last
    });
    let _ = ask_tx.send(Ask::Stop);
    drop(ask_tx);
    // The plain reader may be blocked reading stdin; only wait for the editor's thread.
    if interactive {
        let _ = reader.join();
    }
    code
}

/// Prints session state changes as zkCli does (`WatchedEvent state:Disconnected type:None
/// path:null`), above the prompt.
fn spawn_state_printer(client: Option<&Client>, out: &Out) -> Option<tokio::task::AbortHandle> {
    let client = client?;
    let mut states = client.state_changes();
    let out = out.clone();
    let task = tokio::spawn(async move {
        while let Some(s) = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut states), cx)
        })
        .await
        {
            // Closing is what the user asked for (quit, connect): nothing to report.
            if s == zk_core::SessionState::Lost(zk_core::LostReason::Closed) {
                continue;
            }
            let name = output::keeper_state(s);
            out.async_emit(
                &format!("WatchedEvent state:{name} type:None path:null"),
                json!({"state": name}),
            );
        }
    });
    Some(task.abort_handle())
}

/// The printer handed to output code, when rustyline can make one.
type Printer = Option<Arc<Mutex<dyn ExternalPrinter + Send>>>;

/// Starts the rustyline thread; returns its printer and the thread.
fn start_editor(
    handle: tokio::runtime::Handle,
    client: SharedClient,
    asks: std_mpsc::Receiver<Ask>,
    inputs: mpsc::UnboundedSender<Input>,
) -> rustyline::Result<(Printer, thread::JoinHandle<()>)> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(true)
        .max_history_size(1000)?
        .build();
    let mut editor: Editor<ZkHelper, FileHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ZkHelper { client, handle }));
    let history = history_file();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let printer: Printer = match editor.create_external_printer() {
        Ok(p) => Some(Arc::new(Mutex::new(p))),
        Err(_) => None,
    };
    let thread = thread::spawn(move || {
        while let Ok(Ask::Line(prompt)) = asks.recv() {
            let input = match editor.readline(&prompt) {
                Ok(line) => Input::Line(line),
                Err(ReadlineError::Interrupted) => Input::Interrupted,
                Err(_) => Input::Eof,
            };
            let eof = matches!(input, Input::Eof);
            if inputs.send(input).is_err() || eof {
                break;
            }
        }
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
    });
    Ok((printer, thread))
}

/// Reads stdin line by line (no prompt) for a shell driven through a pipe.
fn start_plain_reader(
    asks: std_mpsc::Receiver<Ask>,
    inputs: mpsc::UnboundedSender<Input>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut stdin = stdin.lock();
        let mut buf = Vec::new();
        while let Ok(Ask::Line(_)) = asks.recv() {
            buf.clear();
            // Bytes, not str: a line that is not UTF-8 becomes a bad command, not the end.
            let input = match stdin.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => Input::Eof,
                Ok(_) => Input::Line(
                    String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_owned(),
                ),
            };
            let eof = matches!(input, Input::Eof);
            if inputs.send(input).is_err() || eof {
                break;
            }
        }
    })
}

/// `~/.zk_history`.
fn history_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".zk_history"))
}

/// Completes command names and node paths.
struct ZkHelper {
    client: SharedClient,
    handle: tokio::runtime::Handle,
}

impl ZkHelper {
    /// The children of `parent`, or nothing if the server does not answer in time.
    fn children(&self, parent: &str) -> Vec<String> {
        let client = match self.client.lock() {
            Ok(g) => g.clone(),
            Err(_) => None,
        };
        let Some(client) = client else {
            return Vec::new();
        };
        let parent = parent.to_owned();
        // The runtime's main thread drives the connection; this thread only waits.
        self.handle
            .block_on(async move {
                tokio::time::timeout(COMPLETION_TIMEOUT, client.get_children(&parent)).await
            })
            .ok()
            .and_then(Result::ok)
            .map(|children| children.to_vec())
            .unwrap_or_default()
    }
}

/// Splits what precedes the cursor into the start of the current word and the word.
fn current_word(line: &str, pos: usize) -> (usize, &str) {
    let before = line.get(..pos).unwrap_or(line);
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    (start, &before[start..])
}

/// Completion candidates for a line: command names for the first word, paths for words that
/// start with `/`. `children` lists a node's children.
fn candidates(
    line: &str,
    pos: usize,
    children: &dyn Fn(&str) -> Vec<String>,
) -> (usize, Vec<Pair>) {
    let (start, word) = current_word(line, pos);
    if line[..start].trim().is_empty() {
        let mut names: Vec<&str> = commands::COMMANDS
            .iter()
            .map(|c| c.name)
            .chain(["exit"])
            .filter(|n| n.starts_with(word))
            .collect();
        names.sort_unstable();
        let pairs = names
            .into_iter()
            .map(|n| Pair {
                display: n.to_owned(),
                replacement: format!("{n} "),
            })
            .collect();
        return (start, pairs);
    }
    if !word.starts_with('/') {
        return (pos, Vec::new());
    }
    let (parent, partial) = match word.rfind('/') {
        Some(0) | None => ("/", &word[1..]),
        Some(i) => (&word[..i], &word[i + 1..]),
    };
    let mut kids: Vec<String> = children(parent)
        .into_iter()
        .filter(|k| k.starts_with(partial))
        .collect();
    kids.sort();
    let pairs = kids
        .into_iter()
        .map(|k| Pair {
            replacement: zk_core::path::join(parent, &k),
            display: k,
        })
        .collect();
    (start, pairs)
}

impl Completer for ZkHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(candidates(line, pos, &|p: &str| self.children(p)))
    }
}

impl Hinter for ZkHelper {
    type Hint = String;
}

impl Highlighter for ZkHelper {}

impl Validator for ZkHelper {}

impl Helper for ZkHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn kids(p: &str) -> Vec<String> {
        match p {
            "/" => vec!["zookeeper".into(), "app".into(), "apple".into()],
            "/app" => vec!["x".into(), "y".into()],
            _ => vec![],
        }
    }

    #[test]
    fn completes_commands() {
        let (start, c) = candidates("get", 3, &kids);
        assert_eq!(start, 0);
        let names: Vec<_> = c.iter().map(|p| p.display.as_str()).collect();
        assert_eq!(
            names,
            ["get", "getAcl", "getAllChildrenNumber", "getEphemerals"]
        );
    }

    #[test]
    fn completes_paths() {
        let (start, c) = candidates("ls /ap", 6, &kids);
        assert_eq!(start, 3);
        let r: Vec<_> = c.iter().map(|p| p.replacement.as_str()).collect();
        assert_eq!(r, ["/app", "/apple"]);
        let (_, c) = candidates("get -s /app/", 12, &kids);
        let r: Vec<_> = c.iter().map(|p| p.replacement.as_str()).collect();
        assert_eq!(r, ["/app/x", "/app/y"]);
        let (_, c) = candidates("set x", 5, &kids);
        assert!(c.is_empty());
    }
}
