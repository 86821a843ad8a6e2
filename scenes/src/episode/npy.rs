//! A minimal NumPy `.npy` codec (the "NPY format", numpy/lib/format.py): enough for episode files.
//!
//! Writes format version 1.0 (version 2.0 only if a header ever outgrows 65,535 bytes); reads
//! versions 1.0, 2.0 and 3.0. Dtypes: `|u1`, `|b1`, `<f4`, `<f8` and little-endian unicode strings
//! `<Un`. Arrays are C order; Fortran-order arrays are refused rather than silently transposed.

use std::io::{self, Write};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The element types an episode file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    U8,
    Bool,
    F32,
    F64,
    /// Fixed-width UTF-32 string of this many code points (`<Un`).
    Unicode(usize),
}

impl DType {
    /// The `descr` string numpy writes for this dtype.
    pub fn descr(self) -> String {
        match self {
            DType::U8 => "|u1".into(),
            DType::Bool => "|b1".into(),
            DType::F32 => "<f4".into(),
            DType::F64 => "<f8".into(),
            DType::Unicode(n) => format!("<U{n}"),
        }
    }

    pub fn item_size(self) -> usize {
        match self {
            DType::U8 | DType::Bool => 1,
            DType::F32 => 4,
            DType::F64 => 8,
            DType::Unicode(n) => 4 * n,
        }
    }

    /// Parses a `descr` string. Single-byte types accept any byte-order mark.
    pub fn parse(descr: &str) -> Result<Self, NpyError> {
        let unsupported = || NpyError::UnsupportedDtype(descr.to_string());
        let (order, code) = match descr.chars().next() {
            Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
            _ => ('=', descr),
        };
        let little = order == '<' || (order == '=' && cfg!(target_endian = "little"));
        match code {
            "u1" | "B" => Ok(DType::U8),
            "b1" | "?" => Ok(DType::Bool),
            "f4" if little => Ok(DType::F32),
            "f8" if little => Ok(DType::F64),
            _ if code.starts_with('U') && little => code[1..]
                .parse::<usize>()
                .map(DType::Unicode)
                .map_err(|_| unsupported()),
            _ => Err(unsupported()),
        }
    }
}

/// A decoded `.npy` array: dtype, shape and the raw little-endian element bytes (C order).
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Why a `.npy` payload could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NpyError {
    #[error("not a .npy array (bad magic bytes)")]
    BadMagic,
    #[error("unsupported .npy format version {0}.{1}")]
    UnsupportedVersion(u8, u8),
    #[error("truncated .npy data: {needed} bytes needed, {have} present")]
    Truncated { needed: usize, have: usize },
    #[error("bad .npy header: {0}")]
    BadHeader(String),
    #[error("unsupported dtype '{0}'")]
    UnsupportedDtype(String),
    #[error("Fortran-order arrays are not supported")]
    FortranOrder,
}

/// Formats a shape as Python prints a tuple: `()`, `(5,)`, `(11, 6)`.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Writes the magic, version and header of an array; the caller writes the data right after.
/// The header is padded with spaces so that the data starts on a 64-byte boundary, as numpy does.
pub fn write_header(out: &mut impl Write, dtype: DType, shape: &[usize]) -> io::Result<()> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_str(shape)
    );
    // Version 1.0 has a 2-byte length, 2.0 a 4-byte one; the prefix is magic + version + length.
    let (version, prefix) = if dict.len() + 1 + 10 <= u16::MAX as usize {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    let header_len = total - prefix;
    out.write_all(MAGIC)?;
    out.write_all(&[version, 0])?;
    if version == 1 {
        out.write_all(&(header_len as u16).to_le_bytes())?;
    } else {
        out.write_all(&(header_len as u32).to_le_bytes())?;
    }
    out.write_all(dict.as_bytes())?;
    out.write_all(&vec![b' '; header_len - dict.len() - 1])?;
    out.write_all(b"\n")
}

/// Decodes a whole `.npy` payload. The data bytes are moved out of `bytes`, not copied twice.
pub fn parse(mut bytes: Vec<u8>) -> Result<NpyArray, NpyError> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(
            if bytes.len() < 10 && MAGIC.starts_with(&bytes[..bytes.len().min(6)]) {
                NpyError::Truncated {
                    needed: 10,
                    have: bytes.len(),
                }
            } else {
                NpyError::BadMagic
            },
        );
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, prefix) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(NpyError::Truncated {
                    needed: 12,
                    have: bytes.len(),
                });
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        _ => return Err(NpyError::UnsupportedVersion(major, minor)),
    };
    let data_start = prefix + header_len;
    if bytes.len() < data_start {
        return Err(NpyError::Truncated {
            needed: data_start,
            have: bytes.len(),
        });
    }
    let header = std::str::from_utf8(&bytes[prefix..data_start])
        .map_err(|_| NpyError::BadHeader("header is not text".into()))?;
    let (dtype, fortran, shape) = parse_header(header)?;
    if fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(NpyError::FortranOrder);
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| NpyError::BadHeader("shape overflows".into()))?;
    let needed = count
        .checked_mul(dtype.item_size())
        .and_then(|n| n.checked_add(data_start))
        .ok_or_else(|| NpyError::BadHeader("shape overflows".into()))?;
    if bytes.len() < needed {
        return Err(NpyError::Truncated {
            needed,
            have: bytes.len(),
        });
    }
    bytes.truncate(needed);
    bytes.drain(..data_start);
    Ok(NpyArray {
        dtype,
        shape,
        data: bytes,
    })
}

impl NpyArray {
    /// Number of elements (product of the shape; 1 for a 0-d array).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements as f64, widening float32. `None` for other dtypes.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self.dtype {
            DType::F64 => Some(
                self.data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
                    .collect(),
            ),
            DType::F32 => Some(
                self.data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")) as f64)
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Elements as bools (any non-zero byte is true). `None` unless the dtype is bool.
    pub fn to_bool(&self) -> Option<Vec<bool>> {
        (self.dtype == DType::Bool).then(|| self.data.iter().map(|&b| b != 0).collect())
    }

    /// The single string of a unicode array, NUL padding removed. `None` for other dtypes or
    /// arrays that do not hold exactly one string.
    pub fn to_unicode_string(&self) -> Option<String> {
        match self.dtype {
            DType::Unicode(_) if self.len() == 1 => self
                .data
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("chunk of 4")))
                .take_while(|&c| c != 0)
                .map(char::from_u32)
                .collect(),
            _ => None,
        }
    }
}

/// Writes a complete array of f64 values (header and data).
pub fn write_f64(out: &mut impl Write, shape: &[usize], values: &[f64]) -> io::Result<()> {
    debug_assert_eq!(shape.iter().product::<usize>(), values.len());
    write_header(out, DType::F64, shape)?;
    let mut buf = Vec::with_capacity(values.len().min(1 << 16) * 8);
    for chunk in values.chunks(1 << 16) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&buf)?;
    }
    Ok(())
}

/// Writes a complete array of bytes (`u1`) or bools (`b1`).
pub fn write_bytes(
    out: &mut impl Write,
    dtype: DType,
    shape: &[usize],
    data: &[u8],
) -> io::Result<()> {
    debug_assert!(matches!(dtype, DType::U8 | DType::Bool));
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    write_header(out, dtype, shape)?;
    out.write_all(data)
}

/// Header dictionary: `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header(text: &str) -> Result<(DType, bool, Vec<usize>), NpyError> {
    let bad = |what: &str| NpyError::BadHeader(format!("{what} in {:?}", text.trim_end()));
    let mut p = Lexer {
        s: text.as_bytes(),
        i: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{').ok_or_else(|| bad("expected '{'"))?;
    loop {
        if p.eat(b'}') {
            break;
        }
        let key = p.string().ok_or_else(|| bad("expected a key"))?;
        p.expect(b':').ok_or_else(|| bad("expected ':'"))?;
        match key.as_str() {
            "descr" => descr = Some(p.string().ok_or_else(|| bad("descr is not a string"))?),
            "fortran_order" => fortran = Some(p.boolean().ok_or_else(|| bad("bad fortran_order"))?),
            "shape" => shape = Some(p.tuple().ok_or_else(|| bad("bad shape"))?),
            _ => return Err(bad(&format!("unexpected key '{key}'"))),
        }
        if !p.eat(b',') {
            p.expect(b'}').ok_or_else(|| bad("expected ',' or '}'"))?;
            break;
        }
    }
    let descr = descr.ok_or_else(|| bad("missing 'descr'"))?;
    Ok((
        DType::parse(&descr)?,
        fortran.ok_or_else(|| bad("missing 'fortran_order'"))?,
        shape.ok_or_else(|| bad("missing 'shape'"))?,
    ))
}

/// Just enough of a Python literal lexer for the header: strings, booleans, tuples of ints.
struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        let hit = self.s.get(self.i) == Some(&c);
        self.i += hit as usize;
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn string(&mut self) -> Option<String> {
        self.skip_ws();
        let quote = *self.s.get(self.i).filter(|&&q| q == b'\'' || q == b'"')?;
        let start = self.i + 1;
        let len = self.s[start..].iter().position(|&c| c == quote)?;
        self.i = start + len + 1;
        String::from_utf8(self.s[start..start + len].to_vec()).ok()
    }

    fn boolean(&mut self) -> Option<bool> {
        self.skip_ws();
        for (word, value) in [("True", true), ("False", false)] {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                return Some(value);
            }
        }
        None
    }

    fn tuple(&mut self) -> Option<Vec<usize>> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                return Some(dims);
            }
            self.skip_ws();
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            dims.push(
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()?
                    .parse()
                    .ok()?,
            );
            self.eat(b'L'); // Python 2 long suffix
            if !self.eat(b',') {
                self.expect(b')')?;
                return Some(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(dtype: DType, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, dtype, shape).unwrap();
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn header_is_64_byte_aligned_and_matches_numpy_text() {
        let bytes = encode(DType::F64, &[11, 6], &[0; 11 * 6 * 8]);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let text = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(text.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (11, 6), }"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn round_trip_every_dtype_and_rank() {
        let cases: Vec<(DType, Vec<usize>)> = vec![
            (DType::U8, vec![2, 3, 4]),
            (DType::Bool, vec![5]),
            (DType::F32, vec![3, 2]),
            (DType::F64, vec![]),
            (DType::Unicode(3), vec![]),
        ];
        for (dtype, shape) in cases {
            let n: usize = shape.iter().product::<usize>() * dtype.item_size();
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let arr = parse(encode(dtype, &shape, &data)).unwrap();
            assert_eq!(
                arr,
                NpyArray {
                    dtype,
                    shape: shape.clone(),
                    data
                }
            );
        }
    }

    #[test]
    fn parses_version_2_header_python2_longs_and_double_quotes() {
        let dict = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L, 1L)}\n";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[2, 0]);
        bytes.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(&1.5f32.to_le_bytes());
        bytes.extend_from_slice(&(-2.0f32).to_le_bytes());
        let arr = parse(bytes).unwrap();
        assert_eq!(arr.shape, vec![2, 1]);
        assert_eq!(arr.to_f64().unwrap(), vec![1.5, -2.0]);
    }

    #[test]
    fn errors_instead_of_panics_on_damage() {
        let good = encode(DType::F64, &[4], &[0; 32]);
        assert!(matches!(
            parse(good[..good.len() - 1].to_vec()),
            Err(NpyError::Truncated { .. })
        ));
        assert!(matches!(
            parse(good[..5].to_vec()),
            Err(NpyError::Truncated { .. })
        ));
        assert_eq!(
            parse(b"PK\x03\x04 not npy at all".to_vec()),
            Err(NpyError::BadMagic)
        );
        let mut big_endian = good.clone();
        let pos = big_endian.windows(3).position(|w| w == b"<f8").unwrap();
        big_endian[pos] = b'>';
        assert_eq!(
            parse(big_endian),
            Err(NpyError::UnsupportedDtype(">f8".into()))
        );
        let mut garbled = good;
        let pos = garbled.windows(5).position(|w| w == b"shape").unwrap();
        garbled[pos + 9] = b'x';
        assert!(matches!(parse(garbled), Err(NpyError::BadHeader(_))));
    }

    #[test]
    fn unicode_scalar_decodes() {
        let text = "hé{}";
        let mut data = Vec::new();
        for c in text.chars().chain(std::iter::repeat('\0').take(2)) {
            data.extend_from_slice(&(c as u32).to_le_bytes());
        }
        let arr = parse(encode(DType::Unicode(6), &[], &data)).unwrap();
        assert_eq!(arr.to_unicode_string().as_deref(), Some(text));
    }

    #[test]
    fn shape_strings_match_python() {
        assert_eq!(shape_str(&[]), "()");
        assert_eq!(shape_str(&[5]), "(5,)");
        assert_eq!(shape_str(&[10, 5]), "(10, 5)");
    }
}
