//! `[quality]`: which codec each endpoint's conference-quality score assumes, codec planning
//! values that replace the built-in ones, and the MOS below which a round counts as poor.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::toml_file::{RawQuality, position};
use crate::domain::diag::{LoadError, Problem};
use crate::domain::emodel::{self, CODECS};
use crate::domain::quality::{QualityPolicy, index_of};
use crate::domain::{Endpoint, emodel::Codec};

fn codec_names() -> String {
    CODECS
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Validates the section; `round_seconds` is the probe interval.
pub fn validate(
    file: &Path,
    text: &str,
    raw: &RawQuality,
    round_seconds: f64,
    errors: &mut LoadError,
) -> QualityPolicy {
    let mut problem = |at: usize, field: &str, says: String, fix: String| {
        let (l, c) = crate::domain::diag::line_col(text, at);
        errors.push(Problem::at(file, l, (l > 0).then_some(c), field).says(says).fix(fix));
    };
    let mut codec = |value: &toml::Spanned<String>, field: &str| -> Option<u8> {
        match emodel::codec(value.get_ref()) {
            Some(c) => Some(index_of(c.name)),
            None => {
                problem(
                    value.span().start,
                    field,
                    format!("{:?} is not a known codec", value.get_ref()),
                    format!("write one of {}", codec_names()),
                );
                None
            }
        }
    };
    let d = QualityPolicy::default();
    let default_codec = raw
        .codec
        .as_ref()
        .and_then(|c| codec(c, "quality.codec"))
        .unwrap_or(d.default_codec);
    let carriers = raw
        .carriers
        .iter()
        .flatten()
        .filter_map(|(carrier, c)| Some((carrier.clone(), codec(c, &format!("quality.carriers.{carrier}"))?)))
        .collect();
    let endpoints = raw
        .endpoints
        .iter()
        .flatten()
        .filter_map(|(id, c)| Some((id.clone(), codec(c, &format!("quality.endpoints.{id}"))?)))
        .collect();
    let mut codecs: Vec<Codec> = CODECS.to_vec();
    for (name, values) in raw.codecs.iter().flatten() {
        let field = format!("quality.codecs.{name}");
        let Some(slot) = codecs.iter_mut().find(|c| c.name == name) else {
            problem(
                values.span().start,
                &field,
                format!("{name:?} is not a built-in codec"),
                format!("override one of {}", codec_names()),
            );
            continue;
        };
        let v = values.get_ref();
        if let Some(ie) = &v.ie {
            match *ie.get_ref() {
                x if (0.0..95.0).contains(&x) => slot.ie = x,
                x => problem(
                    ie.span().start,
                    &format!("{field}.ie"),
                    format!("{x} is out of range"),
                    "write the equipment impairment factor from G.113, from 0 to below 95".into(),
                ),
            }
        }
        if let Some(bpl) = &v.bpl {
            match *bpl.get_ref() {
                x if x > 0.0 && x <= 100.0 => slot.bpl = x,
                x => problem(
                    bpl.span().start,
                    &format!("{field}.bpl"),
                    format!("{x} is out of range"),
                    "write the packet-loss robustness factor from G.113, above 0 and at most 100".into(),
                ),
            }
        }
    }
    let poor_mos = match &raw.poor_mos {
        None => d.poor_mos,
        Some(m) if (1.0..=4.5).contains(m.get_ref()) => *m.get_ref(),
        Some(m) => {
            problem(
                m.span().start,
                "quality.poor_mos",
                format!("{} is not a MOS", m.get_ref()),
                "write a score from 1.0 to 4.5, e.g. 3.6".into(),
            );
            d.poor_mos
        }
    };
    QualityPolicy {
        codecs,
        default_codec,
        carriers,
        endpoints,
        poor_mos,
        round_seconds,
    }
}

/// Every carrier and endpoint id named in `[quality]` must exist in the inventory: a typo would
/// silently score an endpoint with the wrong codec.
pub fn check_names(file: &Path, text: &str, raw: &RawQuality, endpoints: &[Arc<Endpoint>], errors: &mut LoadError) {
    let ids: HashSet<&str> = endpoints.iter().map(|e| e.id.as_str()).collect();
    let carriers: HashSet<&str> = endpoints.iter().map(|e| &*e.labels.carrier).collect();
    let mut unknown = |table: &str,
                       names: &Option<std::collections::BTreeMap<String, toml::Spanned<String>>>,
                       known: &HashSet<&str>,
                       what: &str| {
        for (name, value) in names.iter().flatten() {
            if !known.contains(name.as_str()) {
                let (l, c) = position(text, value);
                errors.push(
                    Problem::at(file, l, (l > 0).then_some(c), format!("quality.{table}.{name}"))
                        .says(format!("{name:?} is no {what} of the inventory"))
                        .fix(format!(
                            "correct the {what}'s name as the inventory writes it, or remove the key"
                        )),
                );
            }
        }
    };
    unknown("carriers", &raw.carriers, &carriers, "carrier");
    unknown("endpoints", &raw.endpoints, &ids, "endpoint id");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load_text;

    fn load(quality: &str) -> Result<crate::config::Config, crate::config::LoadError> {
        let text = format!("[inventory]\nfiles = [\"inventory.csv\"]\n{quality}");
        load_text(Path::new("diemcau.toml"), &text, Path::new("."), &|_| {
            Ok(b"id,province,commune,carrier,address\nA,T,X,VNPT,127.0.0.1\nB,T,Y,Viettel,127.0.0.2\n".to_vec())
        })
    }

    #[test]
    fn codecs_by_carrier_and_endpoint_with_overrides() {
        let c = load("[quality]\npoor_mos = 3.8\n[quality.carriers]\nViettel = \"g711\"\n[quality.endpoints]\nA = \"g711-noplc\"\n[quality.codecs.g722]\nbpl = 4.3\n").unwrap();
        let q = &c.health.quality;
        assert_eq!(q.poor_mos, 3.8);
        let names: Vec<&str> = c.endpoints.iter().map(|e| q.codec(q.codec_index(e)).name).collect();
        assert_eq!(names, ["g711-noplc", "g711"]);
        assert_eq!(q.codecs.iter().find(|c| c.name == "g722").unwrap().bpl, 4.3);
        assert_eq!(q.round_seconds, 10.0, "the probe interval");
    }

    #[test]
    fn unknown_codecs_carriers_and_ids_are_reported_where_they_are_written() {
        let e = load("[quality]\ncodec = \"opus\"\npoor_mos = 7\n[quality.codecs.g729]\nie = 10\n").unwrap_err();
        let text = e.to_string();
        for want in [
            "diemcau.toml:4:9: quality.codec: \"opus\" is not a known codec",
            "diemcau.toml:5:12: quality.poor_mos: 7 is not a MOS",
            "diemcau.toml:6:1: quality.codecs.g729: \"g729\" is not a built-in codec",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        // Names are checked against the inventory once the rest of the file is valid.
        let e = load("[quality.carriers]\nFPT = \"g711\"\n[quality.endpoints]\nZ = \"g722\"\n").unwrap_err();
        let text = e.to_string();
        for want in [
            "diemcau.toml:4:7: quality.carriers.FPT: \"FPT\" is no carrier of the inventory",
            "diemcau.toml:6:5: quality.endpoints.Z: \"Z\" is no endpoint id of the inventory",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
    }
}
