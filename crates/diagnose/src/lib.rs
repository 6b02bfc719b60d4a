//! Pure analyses for leakhound, with no I/O of their own: robust trend
//! statistics ([`trend`]) and the parser and verdict for V8 `--trace-gc`
//! logs ([`gclog`]).

pub mod gclog;
pub mod trend;
