//! Vietnamese collation: names ordered as a Vietnamese reader expects.

/// Vietnamese letters in alphabetical order, each with its tones in the usual order
/// (ngang, huyền, sắc, hỏi, ngã, nặng).
const VI_LETTERS: [&str; 33] = [
    "aàáảãạ",
    "ăằắẳẵặ",
    "âầấẩẫậ",
    "b",
    "c",
    "d",
    "đ",
    "eèéẻẽẹ",
    "êềếểễệ",
    "f",
    "g",
    "h",
    "iìíỉĩị",
    "j",
    "k",
    "l",
    "m",
    "n",
    "oòóỏõọ",
    "ôồốổỗộ",
    "ơờớởỡợ",
    "p",
    "q",
    "r",
    "s",
    "t",
    "uùúủũụ",
    "ưừứửữự",
    "v",
    "w",
    "x",
    "yỳýỷỹỵ",
    "z",
];

/// Administrative prefixes left out when sorting, so "Thành phố Cần Thơ" sorts under C.
const ADMIN_PREFIXES: [&str; 8] = [
    "Thành phố ",
    "Tỉnh ",
    "Thị xã ",
    "Thị trấn ",
    "Quận ",
    "Huyện ",
    "Phường ",
    "Xã ",
];

/// A sort key that orders Vietnamese names as a Vietnamese reader expects: by proper name
/// (administrative prefix dropped), letters first (a < ă < â < b … d < đ < e), tones only to
/// break ties, case ignored. Characters outside the alphabet sort after it, by code point.
pub fn collation_key(name: &str) -> (Vec<u32>, Vec<u32>, String) {
    let trimmed = name.trim();
    let proper = ADMIN_PREFIXES
        .iter()
        .find_map(|p| trimmed.strip_prefix(p))
        .unwrap_or(trimmed);
    let mut letters = Vec::new();
    let mut tones = Vec::new();
    for c in proper.chars().flat_map(char::to_lowercase) {
        let found = VI_LETTERS.iter().enumerate().find_map(|(rank, forms)| {
            forms
                .chars()
                .position(|f| f == c)
                .map(|tone| (rank as u32 + 1, tone as u32))
        });
        let (rank, tone) = match (found, c) {
            (Some(x), _) => x,
            (None, ' ') => (0, 0),
            (None, c) if c.is_ascii_digit() => (0x100 + c as u32, 0),
            (None, c) => (0x1000 + c as u32, 0),
        };
        letters.push(rank);
        tones.push(tone);
    }
    (letters, tones, trimmed.to_string())
}
