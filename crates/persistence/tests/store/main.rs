//! The Diesel adapter's tests, in one binary: the domain's repository contract on
//! PostgreSQL and SQLite (`contract`), what only a SQL store has (`sql`), and
//! connecting (`connect`). Every test gets a database of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Generates `postgres::<test>` and `sqlite::<test>` for each test, each on a fresh
/// database of its backend.
macro_rules! on_each_backend {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[test]
                fn $test() {
                    super::$test(&portcullis_persistence::testing::TestDatabase::postgres());
                }
            )*
        }
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    super::$test(&portcullis_persistence::testing::TestDatabase::sqlite());
                }
            )*
        }
    };
}

mod connect;
mod listen;
mod signing_keys;
mod sql;

/// `portcullis_domain::contract`, one test per case and backend.
mod contract {
    mod postgres {
        use portcullis_persistence::testing::TestDatabase;

        portcullis_domain::repository_contract!(TestDatabase::postgres(), TestDatabase::database);
    }

    mod sqlite {
        use portcullis_persistence::testing::TestDatabase;

        portcullis_domain::repository_contract!(TestDatabase::sqlite(), TestDatabase::database);
    }
}
