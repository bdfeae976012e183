#!/usr/bin/env bash
# The domain crate must stay pure: no web framework, database, async runtime or I/O
# crate in its normal dependency tree (dev-dependencies may use anything).
set -euo pipefail
forbidden='^(actix|diesel|tokio|r2d2|libsqlite3-sys|pq-sys|reqwest|hyper|mio|async-std)'
tree=$(cargo tree -p portcullis-domain -e normal --all-features --prefix none --format '{p}')
if offenders=$(printf '%s\n' "$tree" | grep -E "$forbidden"); then
    echo "domain purity check failed: portcullis-domain depends on" >&2
    printf '%s\n' "$offenders" | sort -u >&2
    exit 1
fi
echo "domain purity check: ok ($(printf '%s\n' "$tree" | sort -u | wc -l) crates, none forbidden)"
