//! The shared ledger's schema on PostgreSQL: the local ledger's shipped tables, each row keyed
//! by the ledger it came from (`source`), plus `sources` (who ships, from where, how their
//! clocks compare). Versioned like the local migrations; applied under an advisory lock, so
//! vantages starting together migrate once.

/// A column's type on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    /// An integer that may be NULL.
    OptInt,
    Text,
    OptText,
}

/// One shipped table: its name, its key column, then the other columns.
pub(crate) struct Table {
    pub name: &'static str,
    pub key: &'static str,
    pub key_kind: Kind,
    pub columns: &'static [(&'static str, Kind)],
}

use Kind::{Int, OptInt, OptText, Text};

/// Every shipped table, in the order a catch-up ships them (runs before what refers to them).
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "runs",
        key: "run_id",
        key_kind: Int,
        columns: &[
            ("started_ms", Int),
            ("last_seen_ms", Int),
            ("clean_stop", Int),
            ("recovered_ms", OptInt),
            ("vantage", Text),
        ],
    },
    Table {
        name: "endpoints",
        key: "id",
        key_kind: Text,
        columns: &[
            ("province", Text),
            ("district", Text),
            ("commune", Text),
            ("carrier", Text),
            ("address", Text),
            ("first_seen_ms", Int),
            ("removed_ms", OptInt),
        ],
    },
    Table {
        name: "presence",
        key: "id",
        key_kind: Int,
        columns: &[("endpoint", Text), ("from_ms", Int), ("to_ms", OptInt)],
    },
    Table {
        name: "transitions",
        key: "id",
        key_kind: Int,
        columns: &[
            ("run_id", Int),
            ("endpoint", Text),
            ("from_state", Text),
            ("to_state", Text),
            ("at_ms", Int),
            ("reason", Text),
            ("check_kind", Text),
        ],
    },
    Table {
        name: "outages",
        key: "id",
        key_kind: Int,
        columns: &[
            ("run_id", Int),
            ("endpoint", Text),
            ("start_ms", Int),
            ("end_ms", OptInt),
            ("cause", Text),
            ("check_kind", Text),
            ("end_reason", OptText),
            ("domain", Text),
            ("failing_hop", Text),
        ],
    },
    Table {
        name: "pauses",
        key: "id",
        key_kind: Int,
        columns: &[
            ("run_id", Int),
            ("from_ms", Int),
            ("to_ms", Int),
            ("cause", Text),
            ("family", Text),
        ],
    },
    Table {
        name: "interruptions",
        key: "id",
        key_kind: Int,
        columns: &[("run_id", Int), ("endpoint", Text), ("start_ms", Int), ("end_ms", Int)],
    },
];

/// The table named `name`.
pub(crate) fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

fn pg_type(kind: Kind) -> &'static str {
    match kind {
        Int => "bigint NOT NULL",
        OptInt => "bigint",
        Text => "text NOT NULL",
        OptText => "text",
    }
}

/// Versioned PostgreSQL schema: append, never edit.
pub(crate) fn migrations() -> Vec<String> {
    let mut first = String::from(
        "CREATE TABLE sources (
            source text PRIMARY KEY,
            vantage text NOT NULL,
            shard_index integer NOT NULL,
            shard_count integer NOT NULL,
            host text NOT NULL,
            seen_ms bigint NOT NULL,
            clock_skew_ms bigint NOT NULL DEFAULT 0
        );\n",
    );
    for t in TABLES {
        let mut cols = format!("source text NOT NULL, {} {}", t.key, pg_type(t.key_kind));
        for (c, k) in t.columns {
            cols.push_str(&format!(", {c} {}", pg_type(*k)));
        }
        first.push_str(&format!(
            "CREATE TABLE {name} ({cols}, PRIMARY KEY (source, {key}));\n",
            name = t.name,
            key = t.key
        ));
    }
    first.push_str(
        "CREATE INDEX outages_by_endpoint ON outages (endpoint, start_ms);
         CREATE INDEX transitions_by_endpoint ON transitions (endpoint, at_ms);
         CREATE INDEX presence_by_endpoint ON presence (endpoint, from_ms);",
    );
    // 2: the live merged view reads only what is open now.
    let open = "CREATE INDEX outages_open ON outages (endpoint) WHERE end_ms IS NULL;
         CREATE INDEX presence_open ON presence (endpoint) WHERE to_ms IS NULL;"
        .to_string();
    vec![first, open]
}

/// `INSERT … ON CONFLICT DO UPDATE` for one row of `t`: `$1` the source, `$2` the key, then the
/// columns in order.
pub(crate) fn upsert(t: &Table) -> String {
    let names: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
    let params: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 3)).collect();
    let updates: Vec<String> = names.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
    format!(
        "INSERT INTO {name} (source, {key}, {cols}) VALUES ($1, $2, {params}) \
         ON CONFLICT (source, {key}) DO UPDATE SET {updates}",
        name = t.name,
        key = t.key,
        cols = names.join(", "),
        params = params.join(", "),
        updates = updates.join(", ")
    )
}

/// The local `SELECT` of one row of `t` by key, columns in [`upsert`]'s order after the key.
pub(crate) fn select_local(t: &Table) -> String {
    let names: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
    format!(
        "SELECT {key}, {cols} FROM {name}",
        key = t.key,
        cols = names.join(", "),
        name = t.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_table_has_a_spec_with_the_same_key() {
        for (name, key) in crate::store::schema::SHIPPED {
            let t = table(name).expect(name);
            assert_eq!(t.key, *key);
        }
        assert_eq!(TABLES.len(), crate::store::schema::SHIPPED.len());
    }

    #[test]
    fn the_specs_match_the_local_schema() {
        // Every column the spec names exists locally, and no local column is left behind.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for m in crate::store::MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        for t in TABLES {
            let mut st = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{}')", t.name))
                .unwrap();
            let local: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
            let mut spec: Vec<String> = std::iter::once(t.key.to_string())
                .chain(t.columns.iter().map(|(c, _)| c.to_string()))
                .collect();
            let mut local_sorted = local.clone();
            local_sorted.sort();
            spec.sort();
            assert_eq!(spec, local_sorted, "{}", t.name);
        }
    }
}
