//! The recorded history of a test: what every client and the nemesis did, and when.
//!
//! - [`value`]: [`Value`], the dynamically typed payload of an op (nil, ints, strings, lists,
//!   maps), shared by JSON and EDN.
//! - [`op`]: [`Op`], [`OpType`] (invoke/ok/fail/info), [`Process`] (a client number or the
//!   nemesis), and [`Validity`], the three-valued verdict every checker returns.
//! - [`history`]: [`History`], an ordered list of ops with invocation/completion pairing.
//! - [`pairing`]: [`pairing::Pairer`], the same pairing one op at a time, for streaming checkers.
//! - [`jsonl`]: the native format, one JSON object per line; a streaming reader that accepts a
//!   truncated last line, and a writer that flushes every op as it is written.
//! - [`edn`]: a streaming reader for Jepsen's `history.edn` and Knossos/Porcupine data files.
//! - [`edn_write`]: a history written as Jepsen's `history.edn` (for Elle and Knossos).
//! - [`vocab`]: the op functions (`add`, `read`, `leader`, ...) and probe roles, named once.
//! - [`build`]: [`build::Builder`], hand-built histories for tests.
//! - [`load`]: open a file, guess or take its [`Format`], and read it into a [`History`] or
//!   stream its ops; `chunked` parses JSONL streams on several threads.
//!
//! The format is documented in `docs/history-format.md`.

pub mod build;
mod chunked;
pub mod edn;
pub mod edn_write;
mod error;
mod fastjson;
#[allow(clippy::module_inception)]
pub mod history;
pub mod jsonl;
mod load;
pub mod op;
pub mod pairing;
pub mod value;
pub mod vocab;

pub use error::ReadError;
pub use history::{History, PairError};
pub use load::{Format, LoadInfo, OpSource, load, load_reader, reader, stream};
pub use op::{Op, OpType, Process, Validity};
pub use value::Value;
