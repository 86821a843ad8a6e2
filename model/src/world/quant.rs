//! 8-bit block quantisation of a model's float weights, for shipped inference checkpoints
//! (`precision: "q8"`, file `ema.q8`): each parameter tensor, flattened in visiting order, is
//! cut into blocks of [`BLOCK`] values stored as one f32 scale (absmax / 127) and `BLOCK` i8
//! values; dequantised weight = i8 · scale, so the error per weight is at most scale / 2.
//!
//! File layout (little endian): `b"MWQ8"`, u32 version (1), u32 block size, u32 tensor count,
//! then per tensor: u64 value count, and per block: f32 scale followed by its i8 values.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};

/// Values per quantisation block.
pub const BLOCK: usize = 64;
const MAGIC: &[u8; 4] = b"MWQ8";
const VERSION: u32 = 1;

/// The scale and 8-bit codes of one block: `scale = absmax / 127`, `q = round(v / scale)`.
pub fn quantize_block(values: &[f32]) -> (f32, Vec<i8>) {
    let absmax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = absmax / 127.0;
    let q = values
        .iter()
        .map(|&v| {
            if scale > 0.0 {
                (v / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            }
        })
        .collect();
    (scale, q)
}

/// Encodes tensors (flattened) as a q8 file.
pub fn encode(tensors: &[Vec<f32>]) -> Vec<u8> {
    let total: usize = tensors.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(16 + total + total.div_ceil(BLOCK) * 4 + tensors.len() * 8);
    out.extend_from_slice(MAGIC);
    for v in [VERSION, BLOCK as u32, tensors.len() as u32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for t in tensors {
        out.extend_from_slice(&(t.len() as u64).to_le_bytes());
        for block in t.chunks(BLOCK) {
            let (scale, q) = quantize_block(block);
            out.extend_from_slice(&scale.to_le_bytes());
            out.extend(q.iter().map(|&b| b as u8));
        }
    }
    out
}

/// A little-endian reader over a byte slice that reports truncation.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}

/// Decodes a q8 file into dequantised tensors, checking each against the expected shapes.
pub fn decode(bytes: &[u8], shapes: &[Vec<usize>]) -> Result<Vec<Vec<f32>>, String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err("not a q8 weight file (bad magic)".into());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!(
            "q8 version {version} is not supported (expected {VERSION})"
        ));
    }
    let block = r.u32()? as usize;
    let count = r.u32()? as usize;
    if block == 0 || count != shapes.len() {
        return Err(format!(
            "holds {count} tensors in blocks of {block}, the manifest lists {}",
            shapes.len()
        ));
    }
    let mut out = Vec::with_capacity(count);
    for (i, shape) in shapes.iter().enumerate() {
        let n = r.u64()? as usize;
        let want: usize = shape.iter().product();
        if n != want {
            return Err(format!(
                "tensor #{i} has {n} values, its shape {shape:?} needs {want}"
            ));
        }
        let mut values = Vec::with_capacity(n);
        while values.len() < n {
            let len = block.min(n - values.len());
            let scale = r.f32()?;
            values.extend(r.take(len)?.iter().map(|&b| b as i8 as f32 * scale));
        }
        out.push(values);
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes of trailing data", bytes.len() - r.at));
    }
    Ok(out)
}

/// Every float parameter of `module`, flattened, in visiting order.
pub fn collect_params<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let v = p.val().into_data().convert::<f32>().to_vec::<f32>();
            self.0.push(v.expect("float parameters convert to f32"));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// `module` with its float parameters replaced, in visiting order, by `values` (one flattened
/// tensor each, of the parameter's shape).
pub fn load_params<B: Backend, M: Module<B>>(module: M, values: Vec<Vec<f32>>) -> M {
    struct Load(std::vec::IntoIter<Vec<f32>>);
    impl<B: Backend> ModuleMapper<B> for Load {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, t, mapper) = p.consume();
            let v = self.0.next().expect("one tensor per parameter");
            let (shape, grad) = (t.dims(), t.is_require_grad());
            // A fresh tensor tracks no gradient: keep the parameter trainable if it was.
            let t =
                Tensor::from_data(TensorData::new(v, shape), &t.device()).set_require_grad(grad);
            Param::from_mapped_value(id, t, mapper)
        }
    }
    module.map(&mut Load(values.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_to_the_nearest_step_of_their_scale() {
        let v: Vec<f32> = (0..150)
            .map(|i| ((i as f32) * 0.37).sin() * (1.0 + i as f32))
            .collect();
        let bytes = encode(&[v.clone(), vec![0.0; 3]]);
        let back = decode(&bytes, &[vec![150], vec![3]]).unwrap();
        for (b, block) in back[0].chunks(BLOCK).zip(v.chunks(BLOCK)) {
            let absmax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
            for (x, y) in block.iter().zip(b) {
                assert!((x - y).abs() <= absmax / 254.0 * 1.0001, "{x} → {y}");
            }
        }
        assert_eq!(back[1], vec![0.0; 3]);
        // 4 header words + per tensor a count and per block a scale, plus one byte per value.
        assert_eq!(bytes.len(), 16 + 8 + 3 * 4 + 150 + 8 + 4 + 3);
    }

    #[test]
    fn damaged_files_are_refused() {
        let bytes = encode(&[vec![1.0, 2.0, 3.0]]);
        assert!(decode(&bytes[..bytes.len() - 1], &[vec![3]]).is_err());
        assert!(decode(&bytes, &[vec![4]]).is_err());
        assert!(decode(&bytes, &[vec![3], vec![1]]).is_err());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(decode(&bad, &[vec![3]]).unwrap_err().contains("magic"));
        let mut long = bytes;
        long.push(0);
        assert!(decode(&long, &[vec![3]]).unwrap_err().contains("trailing"));
    }
}
