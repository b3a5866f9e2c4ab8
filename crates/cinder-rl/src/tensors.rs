//! Moving host data to tensors and back: [`read`] is public (Cinder's other crates read tensors
//! with it); the rest are crate-internal helpers shared by the learners.

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

/// A float tensor's values on the host (an `f32` tensor's buffer is taken over, not copied,
/// where the backend hands it out).
#[allow(
    clippy::expect_used,
    reason = "converted to f32 first: reading f32 cannot fail"
)]
pub fn read<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("float tensor")
}

/// The finiteness checks of one update, kept on the device: the loss and gradient norm of each
/// gradient step. [`UpdateChecks::read`] reads them with the update's diagnostics in a single
/// device read (a sync on a GPU) instead of one per step.
pub(crate) struct UpdateChecks<B: Backend> {
    values: Vec<Tensor<B, 1>>,
}

impl<B: Backend> UpdateChecks<B> {
    pub(crate) fn new() -> Self {
        Self { values: Vec::new() }
    }

    /// Records one gradient step's loss and gradient norm (each `[1]`).
    pub(crate) fn push(&mut self, loss: Tensor<B, 1>, grad_norm: Tensor<B, 1>) {
        self.values.push(loss);
        self.values.push(grad_norm);
    }

    /// Reads the parameter norm, `diagnostics` (each `[1]`) and the recorded checks at once.
    /// Returns the diagnostics' values and the last step's gradient norm, or
    /// [`crate::RlError::NonFinite`] for the first non-finite quantity in the order they arose
    /// (each step's loss, then its gradient norm, then the final parameter norm).
    pub(crate) fn read(
        self,
        iteration: u64,
        parameter_norm: Tensor<B, 1>,
        diagnostics: Vec<Tensor<B, 1>>,
    ) -> crate::Result<(Vec<f32>, f32)> {
        let n = diagnostics.len();
        let mut all = vec![parameter_norm];
        all.extend(diagnostics);
        all.extend(self.values);
        let values = read(Tensor::cat(all, 0));
        let (head, steps) = values.split_at(1 + n);
        let first_bad = steps
            .iter()
            .enumerate()
            .map(|(k, &v)| (if k % 2 == 0 { "loss" } else { "gradient norm" }, v))
            .chain(head.first().map(|&v| ("parameter norm", v)))
            .find(|(_, v)| !v.is_finite());
        if let Some((quantity, value)) = first_bad {
            crate::RlError::ensure_finite(iteration, quantity, value)?;
        }
        let grad_norm = steps.last().copied().unwrap_or(0.0);
        Ok((head.get(1..).unwrap_or_default().to_vec(), grad_norm))
    }
}

/// `Ok` when `t` is `[rows]`.
pub(crate) fn check_rows<B: Backend>(
    name: &str,
    t: &Tensor<B, 1>,
    rows: usize,
) -> crate::Result<()> {
    let [got] = t.dims();
    if got == rows {
        Ok(())
    } else {
        Err(crate::RlError::InvalidInput(format!(
            "{name} has {got} rows, the batch has {rows}"
        )))
    }
}
