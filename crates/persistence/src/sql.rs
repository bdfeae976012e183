//! SQL functions the queries use that Diesel does not declare for both backends.

use diesel::sql_types::Text;

diesel::define_sql_function! {
    /// `lower(text)`: the case folding the unique indexes on emails and usernames use.
    fn lower(x: Text) -> Text;
}
