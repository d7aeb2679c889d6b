//! Which codec each endpoint is scored with, and when a score counts as poor: the `[quality]`
//! settings as the monitor uses them (the formula itself is in [`super::emodel`]).

use super::emodel::{self, Codec};
use super::endpoint::Endpoint;

/// MOS below which an endpoint's rounds count as poor quality (ITU-T G.107 Annex B puts
/// "many users dissatisfied" below R = 70, MOS 3.6).
pub const DEFAULT_POOR_MOS: f64 = 3.6;

/// The `[quality]` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityPolicy {
    /// The codec table after `[quality.codecs.NAME]` overrides, in [`emodel::CODECS`] order.
    pub codecs: Vec<Codec>,
    /// Index into `codecs` for endpoints named nowhere else.
    pub default_codec: u8,
    /// `[quality.carriers]`: carrier → index into `codecs`.
    pub carriers: Vec<(String, u8)>,
    /// `[quality.endpoints]`: endpoint id → index into `codecs` (wins over the carrier's).
    pub endpoints: Vec<(String, u8)>,
    /// MOS below which a round counts toward `diemcau_endpoint_poor_quality_seconds_total`.
    pub poor_mos: f64,
    /// Seconds one round stands for (the probe interval).
    pub round_seconds: f64,
}

impl Default for QualityPolicy {
    /// G.722 for every endpoint (video-conference rooms are wideband), poor below MOS 3.6.
    fn default() -> Self {
        QualityPolicy {
            codecs: emodel::CODECS.to_vec(),
            default_codec: index_of(emodel::G722.name),
            carriers: Vec::new(),
            endpoints: Vec::new(),
            poor_mos: DEFAULT_POOR_MOS,
            round_seconds: 10.0,
        }
    }
}

/// Index of a built-in codec in [`emodel::CODECS`] (0 when unknown; callers validate names).
pub fn index_of(name: &str) -> u8 {
    emodel::CODECS.iter().position(|c| c.name == name).unwrap_or(0) as u8
}

impl QualityPolicy {
    /// The codec index for an endpoint: its own, else its carrier's, else the default.
    pub fn codec_index(&self, e: &Endpoint) -> u8 {
        let by_id = self.endpoints.iter().find(|(id, _)| id == e.id.as_str());
        let by_carrier = || self.carriers.iter().find(|(c, _)| c.as_str() == &*e.labels.carrier);
        by_id.or_else(by_carrier).map_or(self.default_codec, |(_, i)| *i)
    }

    /// The codec at an index (the default one for an index out of range).
    pub fn codec(&self, index: u8) -> &Codec {
        self.codecs
            .get(usize::from(index))
            .or_else(|| self.codecs.get(usize::from(self.default_codec)))
            .unwrap_or(&emodel::G722)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EndpointId, Labels};

    fn endpoint(id: &str, carrier: &str) -> Endpoint {
        Endpoint {
            id: EndpointId(id.into()),
            labels: Labels {
                province: "Tỉnh Lào Cai".into(),
                district: None,
                commune: "Xã Tả Van".into(),
                carrier: carrier.into(),
            },
            address: Some(std::net::IpAddr::from([198, 18, 0, 1])),
            host: None,
            resolution: crate::domain::Resolution::Literal,
            checks: std::sync::Arc::from(Vec::new()),
        }
    }

    #[test]
    fn endpoint_wins_over_carrier_wins_over_default() {
        let p = QualityPolicy {
            carriers: vec![("VNPT".into(), index_of("g711"))],
            endpoints: vec![("LC-2".into(), index_of("g711-noplc"))],
            ..Default::default()
        };
        assert_eq!(p.codec(p.codec_index(&endpoint("LC-1", "Viettel"))).name, "g722");
        assert_eq!(p.codec(p.codec_index(&endpoint("LC-1", "VNPT"))).name, "g711");
        assert_eq!(p.codec(p.codec_index(&endpoint("LC-2", "VNPT"))).name, "g711-noplc");
    }
}
