//! SQL functions the queries use that Diesel does not declare for both backends.

use diesel::expression::SqlLiteral;
use diesel::sql_types::Text;

diesel::define_sql_function! {
    /// `lower(text)`: the case folding the unique indexes on emails and usernames use.
    fn lower(x: Text) -> Text;
}

/// `''`, what `users.email` holds for an account without one ([`crate::rows::NO_EMAIL`]),
/// written into the statement rather than bound: only then can PostgreSQL's generic
/// plan of a prepared lookup prove `email <> ''` and use the partial unique index.
/// Bound, the plan cache settles on a sequential scan once a few early executions on a
/// small table found it cheapest.
pub(crate) fn no_email() -> SqlLiteral<Text> {
    diesel::dsl::sql("''")
}
