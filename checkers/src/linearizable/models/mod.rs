//! The sequential specifications the checker knows, each with its codec.
//!
//! - [`register`]: `register` (read/write) and `cas-register` (plus `cas [old new]`).
//! - [`multi`]: `multi-register`, Knossos' transactions over named registers.
//! - [`kv`]: Porcupine's string key-value store (get/put/append).

pub mod kv;
pub mod multi;
pub mod register;

pub use kv::Kv;
pub use multi::MultiRegister;
pub use register::Register;
