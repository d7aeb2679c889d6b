//! Downtime by where its fault lay (a path trace placed it: see [`crate::domain::path`]): at
//! the commune's own site, at a router on the carrier's path, or not placed. `[report] charge`
//! says which of them count against a carrier's target; the rest is excused, excluded from the
//! eligible time like planned maintenance. The monitor's own blindness is never downtime at all
//! (it is unknown time).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A set of fault places, as names: `endpoint` (the site), `path`, `unknown` (not placed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Charged(u8);

const NAMES: [&str; 3] = ["endpoint", "path", "unknown"];

impl Charged {
    /// Every place: the behaviour before faults were placed.
    pub const ALL: Charged = Charged(0b111);

    pub fn contains(self, place: usize) -> bool {
        self.0 & (1 << place) != 0
    }

    /// From names; the unknown name as the error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Charged, String> {
        let mut bits = 0;
        for n in names {
            let i = NAMES.iter().position(|k| *k == n).ok_or_else(|| n.to_string())?;
            bits |= 1 << i;
        }
        Ok(Charged(bits))
    }
}

impl Default for Charged {
    fn default() -> Charged {
        Charged::ALL
    }
}

impl TryFrom<Vec<String>> for Charged {
    type Error = String;
    fn try_from(v: Vec<String>) -> Result<Charged, String> {
        Charged::parse(v.iter().map(String::as_str)).map_err(|n| format!("unknown fault place {n:?}"))
    }
}

impl From<Charged> for Vec<String> {
    fn from(c: Charged) -> Vec<String> {
        (0..NAMES.len())
            .filter(|i| c.contains(*i))
            .map(|i| NAMES[i].to_string())
            .collect()
    }
}

/// Which fault places count against each carrier's target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRules {
    pub default: Charged,
    /// Carrier name (ASCII case ignored) → its own rule.
    pub carriers: BTreeMap<String, Charged>,
}

impl ChargeRules {
    pub fn for_carrier(&self, carrier: &str) -> Charged {
        super::sla::per_carrier(&self.carriers, carrier).unwrap_or(self.default)
    }
}

/// Index in [`NAMES`] of a ledger `domain` value (`monitor` and anything else: not placed).
pub fn place_of(domain: &str) -> usize {
    match domain {
        "endpoint" => 0,
        "path" => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_serialise_and_fall_back_to_the_default() {
        let only_path = Charged::parse(["path", "unknown"]).expect("names");
        assert!(!only_path.contains(0) && only_path.contains(1) && only_path.contains(2));
        assert_eq!(Charged::parse(["site"]), Err("site".to_string()));
        let v: Vec<String> = only_path.into();
        assert_eq!(v, ["path", "unknown"]);
        let rules = ChargeRules {
            default: Charged::ALL,
            carriers: [("VNPT".to_string(), only_path)].into(),
        };
        assert_eq!(rules.for_carrier("vnpt"), only_path);
        assert_eq!(rules.for_carrier("Viettel"), Charged::ALL);
        let json = serde_json::to_string(&rules).expect("json");
        assert_eq!(serde_json::from_str::<ChargeRules>(&json).expect("back"), rules);
        assert_eq!((place_of("endpoint"), place_of("path"), place_of("monitor")), (0, 1, 2));
    }
}
