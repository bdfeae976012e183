//! Rust types whose SQL type differs by backend, so that one set of row types and one
//! copy of the query code serve both.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Jsonb, Text, Uuid};
use diesel::sqlite::{Sqlite, SqliteValue};

/// A UUID: native `uuid` on PostgreSQL, hyphenated `TEXT` on SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Uuid)]
#[diesel(sql_type = Text)]
pub(crate) struct DbUuid(pub(crate) uuid::Uuid);

impl ToSql<Uuid, Pg> for DbUuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <uuid::Uuid as ToSql<Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Uuid, Pg> for DbUuid {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <uuid::Uuid as FromSql<Uuid, Pg>>::from_sql(value).map(Self)
    }
}

impl ToSql<Text, Sqlite> for DbUuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Sqlite> for DbUuid {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(Self(uuid::Uuid::parse_str(&text)?))
    }
}

/// A JSON document: `jsonb` on PostgreSQL, `TEXT` on SQLite.
#[derive(Clone, Debug, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Jsonb)]
#[diesel(sql_type = Text)]
pub(crate) struct DbJson(pub(crate) serde_json::Value);

impl ToSql<Jsonb, Pg> for DbJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<Jsonb, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Jsonb, Pg> for DbJson {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<Jsonb, Pg>>::from_sql(value).map(Self)
    }
}

impl ToSql<Text, Sqlite> for DbJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(&self.0)?);
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Sqlite> for DbJson {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(Self(serde_json::from_str(&text)?))
    }
}
