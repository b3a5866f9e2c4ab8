//! Moving host data to tensors and back (crate-internal helpers shared by the learners).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Row-major `[rows, cols]` host data as a tensor.
pub(crate) fn tensor2<Bk: Backend>(
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &Bk::Device,
) -> Tensor<Bk, 2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// Host data as a `[len]` tensor.
pub(crate) fn tensor1<Bk: Backend>(data: Vec<f32>, device: &Bk::Device) -> Tensor<Bk, 1> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}

/// Action indices stored as floats, as a `[len]` integer tensor.
pub(crate) fn indices1<Bk: Backend>(data: &[f32], device: &Bk::Device) -> Tensor<Bk, 1, Int> {
    let idx: Vec<i64> = data.iter().map(|&a| a as i64).collect();
    Tensor::from_data(TensorData::new(idx, [data.len()]), device)
}

/// A float tensor's values on the host.
#[allow(
    clippy::expect_used,
    reason = "converted to f32 first: reading f32 cannot fail"
)]
pub(crate) fn read<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float tensor")
}
