//! The tables, once per backend: same names and columns, each backend's own SQL types.
//! The query code is written against whichever of the two it is compiled with.

pub(crate) mod pg;
pub(crate) mod sqlite;
