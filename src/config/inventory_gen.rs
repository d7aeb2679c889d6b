//! `diemcau inventory generate`: a national-size example inventory with the real province names
//! (public facts) and synthetic districts, communes and addresses, for tests, docs and the lab.

use std::io::Write;
use std::net::Ipv4Addr;

/// The 63 provinces and centrally-run cities before the July 2025 reform.
pub const PROVINCES_2021: [&str; 63] = [
    "Thành phố Hà Nội",
    "Tỉnh Hà Giang",
    "Tỉnh Cao Bằng",
    "Tỉnh Bắc Kạn",
    "Tỉnh Tuyên Quang",
    "Tỉnh Lào Cai",
    "Tỉnh Điện Biên",
    "Tỉnh Lai Châu",
    "Tỉnh Sơn La",
    "Tỉnh Yên Bái",
    "Tỉnh Hoà Bình",
    "Tỉnh Thái Nguyên",
    "Tỉnh Lạng Sơn",
    "Tỉnh Quảng Ninh",
    "Tỉnh Bắc Giang",
    "Tỉnh Phú Thọ",
    "Tỉnh Vĩnh Phúc",
    "Tỉnh Bắc Ninh",
    "Tỉnh Hải Dương",
    "Thành phố Hải Phòng",
    "Tỉnh Hưng Yên",
    "Tỉnh Thái Bình",
    "Tỉnh Hà Nam",
    "Tỉnh Nam Định",
    "Tỉnh Ninh Bình",
    "Tỉnh Thanh Hóa",
    "Tỉnh Nghệ An",
    "Tỉnh Hà Tĩnh",
    "Tỉnh Quảng Bình",
    "Tỉnh Quảng Trị",
    "Tỉnh Thừa Thiên Huế",
    "Thành phố Đà Nẵng",
    "Tỉnh Quảng Nam",
    "Tỉnh Quảng Ngãi",
    "Tỉnh Bình Định",
    "Tỉnh Phú Yên",
    "Tỉnh Khánh Hòa",
    "Tỉnh Ninh Thuận",
    "Tỉnh Bình Thuận",
    "Tỉnh Kon Tum",
    "Tỉnh Gia Lai",
    "Tỉnh Đắk Lắk",
    "Tỉnh Đắk Nông",
    "Tỉnh Lâm Đồng",
    "Tỉnh Bình Phước",
    "Tỉnh Tây Ninh",
    "Tỉnh Bình Dương",
    "Tỉnh Đồng Nai",
    "Tỉnh Bà Rịa - Vũng Tàu",
    "Thành phố Hồ Chí Minh",
    "Tỉnh Long An",
    "Tỉnh Tiền Giang",
    "Tỉnh Bến Tre",
    "Tỉnh Trà Vinh",
    "Tỉnh Vĩnh Long",
    "Tỉnh Đồng Tháp",
    "Tỉnh An Giang",
    "Tỉnh Kiên Giang",
    "Thành phố Cần Thơ",
    "Tỉnh Hậu Giang",
    "Tỉnh Sóc Trăng",
    "Tỉnh Bạc Liêu",
    "Tỉnh Cà Mau",
];

/// The 34 provinces and centrally-run cities since 1 July 2025.
pub const PROVINCES_2025: [&str; 34] = [
    "Thành phố Hà Nội",
    "Tỉnh Cao Bằng",
    "Tỉnh Tuyên Quang",
    "Tỉnh Điện Biên",
    "Tỉnh Lai Châu",
    "Tỉnh Sơn La",
    "Tỉnh Lào Cai",
    "Tỉnh Thái Nguyên",
    "Tỉnh Lạng Sơn",
    "Tỉnh Quảng Ninh",
    "Tỉnh Bắc Ninh",
    "Tỉnh Phú Thọ",
    "Thành phố Hải Phòng",
    "Tỉnh Hưng Yên",
    "Tỉnh Ninh Bình",
    "Tỉnh Thanh Hóa",
    "Tỉnh Nghệ An",
    "Tỉnh Hà Tĩnh",
    "Tỉnh Quảng Trị",
    "Thành phố Huế",
    "Thành phố Đà Nẵng",
    "Tỉnh Quảng Ngãi",
    "Tỉnh Gia Lai",
    "Tỉnh Khánh Hòa",
    "Tỉnh Đắk Lắk",
    "Tỉnh Lâm Đồng",
    "Tỉnh Đồng Nai",
    "Thành phố Hồ Chí Minh",
    "Tỉnh Tây Ninh",
    "Tỉnh Đồng Tháp",
    "Tỉnh Vĩnh Long",
    "Tỉnh An Giang",
    "Thành phố Cần Thơ",
    "Tỉnh Cà Mau",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Era {
    /// 63 provinces with districts (2021: ~10,600 communes).
    #[value(name = "2021")]
    Y2021,
    /// 34 provinces, no districts (since July 2025: 3,321 communes).
    #[value(name = "2025")]
    Y2025,
}

pub struct GenerateOptions {
    pub era: Era,
    /// Total endpoints, spread over the provinces.
    pub endpoints: usize,
    /// First address; following endpoints take the next addresses.
    pub first_address: Ipv4Addr,
}

impl GenerateOptions {
    pub fn default_endpoints(era: Era) -> usize {
        match era {
            Era::Y2021 => 10_599,
            Era::Y2025 => 3_321,
        }
    }
}

/// Communes per synthetic district (pre-2025 districts averaged ~15 communes).
const COMMUNES_PER_DISTRICT: usize = 15;

/// Writes the CSV. Carriers alternate by district so that a carrier outage in a district is
/// one group; within 2025 inventories "district" is a synthetic cluster ("Cụm"), since
/// districts were abolished by the reform.
pub fn generate(opts: &GenerateOptions, out: &mut dyn Write) -> std::io::Result<()> {
    let provinces: &[&str] = match opts.era {
        Era::Y2021 => &PROVINCES_2021,
        Era::Y2025 => &PROVINCES_2025,
    };
    writeln!(out, "id,province,district,commune,carrier,address")?;
    let base = u32::from(opts.first_address);
    let mut n = 0usize;
    for (pi, province) in provinces.iter().enumerate() {
        // Spread the remainder over the first provinces so the total is exact.
        let count = opts.endpoints / provinces.len() + usize::from(pi < opts.endpoints % provinces.len());
        for c in 0..count {
            let d = c / COMMUNES_PER_DISTRICT + 1;
            let district = match opts.era {
                Era::Y2021 if d.is_multiple_of(4) => format!("Quận {d}"),
                Era::Y2021 => format!("Huyện {d}"),
                Era::Y2025 => format!("Cụm {d}"),
            };
            let commune = match c % 5 {
                0 => format!("Phường {}", c + 1),
                _ => format!("Xã {}", c + 1),
            };
            let carrier = if d % 2 == 1 { "VNPT" } else { "Viettel" };
            let address = Ipv4Addr::from(base.wrapping_add(n as u32));
            writeln!(
                out,
                "VN{:02}-{:05},{province},{district},{commune},{carrier},{address}",
                pi + 1,
                c + 1
            )?;
            n += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_exact_count_with_every_province() {
        let mut out = Vec::new();
        let opts = GenerateOptions {
            era: Era::Y2025,
            endpoints: 3321,
            first_address: Ipv4Addr::new(127, 16, 0, 1),
        };
        generate(&opts, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3322);
        for p in PROVINCES_2025 {
            assert!(text.contains(p), "{p}");
        }
        assert!(text.lines().last().unwrap().ends_with(",127.16.12.249"));
    }
}
