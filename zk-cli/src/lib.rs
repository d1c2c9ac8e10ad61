//! `zk`, the command-line client: zkCli.sh's commands and flags, one-shot or as an interactive
//! shell, with `--json` output.
//!
//! Not written yet: it arrives with the CLI issue.

#![forbid(unsafe_code)]
