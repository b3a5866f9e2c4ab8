//! Tiny envs with known answers, shared by the learner tests (Stable-Baselines3's identity
//! envs): each episode is one step.

#![allow(dead_code)]

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use cinder_env::space::{BoxSpace, Space};

type AB = Autodiff<NdArray<f32>>;
type B = NdArray<f32>;
use cinder_env::{Env, EnvState, Info, Step};

/// One-step episodes: a one-hot state in 0..4, reward 1 for the matching action; from
/// `nan_after` steps on the reward is NaN (a broken env). Saves its state, so runs resume.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    state: usize,
    rng: cinder_env::rng::EnvRng,
    steps: u64,
    nan_after: Option<u64>,
}

impl Env for Identity {
    type Obs = Vec<f32>;
    type Action = usize;
    fn observation_space(&self) -> Space {
        Space::Box(BoxSpace::uniform_bounds(0.0, 1.0, 4))
    }
    fn action_space(&self) -> Space {
        Space::Discrete(cinder_env::Discrete::new(4))
    }
    fn reset(&mut self, seed: Option<u64>) -> cinder_env::Result<(Vec<f32>, Info)> {
        self.state = self.rng.reset(seed).integers(4) as usize;
        Ok((self.obs(), Info::default()))
    }
    fn step(&mut self, action: &usize) -> cinder_env::Result<Step<Vec<f32>>> {
        self.steps += 1;
        let reward = match self.nan_after {
            Some(n) if self.steps > n => f64::NAN,
            _ => f64::from(u8::from(*action == self.state)),
        };
        Ok(Step {
            obs: self.obs(),
            reward,
            terminated: true,
            truncated: false,
            info: Info::default(),
        })
    }
    fn max_episode_steps(&self) -> Option<u64> {
        Some(1)
    }
    fn save_state(&self) -> cinder_env::Result<EnvState> {
        Ok(serde_json::to_value(self).unwrap())
    }
    fn load_state(&mut self, state: &EnvState) -> cinder_env::Result<()> {
        *self = serde_json::from_value(state.clone()).unwrap();
        Ok(())
    }
}

impl Identity {
    /// An identity env whose rewards are NaN after `steps` steps (a broken env).
    pub fn nan_after(steps: u64) -> Self {
        Self {
            nan_after: Some(steps),
            ..Self::default()
        }
    }

    /// The one-hot observation.
    pub fn obs(&self) -> Vec<f32> {
        let mut o = vec![0.0; 4];
        o[self.state] = 1.0;
        o
    }
}

/// One-step episodes with a continuous action: the observation is a target in [-1, 1], the
/// reward `−(a − target)²`.
#[derive(Clone, Default)]
pub struct Target {
    target: f32,
    rng: cinder_env::rng::EnvRng,
}

impl Env for Target {
    type Obs = Vec<f32>;
    type Action = Vec<f32>;
    fn observation_space(&self) -> Space {
        Space::Box(BoxSpace::uniform_bounds(-1.0, 1.0, 1))
    }
    fn action_space(&self) -> Space {
        Space::Box(BoxSpace::uniform_bounds(-2.0, 2.0, 1))
    }
    fn reset(&mut self, seed: Option<u64>) -> cinder_env::Result<(Vec<f32>, Info)> {
        self.target = self.rng.reset(seed).uniform(-1.0, 1.0) as f32;
        Ok((vec![self.target], Info::default()))
    }
    fn max_episode_steps(&self) -> Option<u64> {
        Some(1)
    }
    fn step(&mut self, action: &Vec<f32>) -> cinder_env::Result<Step<Vec<f32>>> {
        let err = f64::from(action[0] - self.target);
        Ok(Step {
            obs: vec![self.target],
            reward: -err * err,
            terminated: true,
            truncated: false,
            info: Info::default(),
        })
    }
}

// Loading PyTorch parameters into Cinder's policy and reading gradients back.

/// PyTorch's `Linear.weight` is `[out, in]`; Burn's is `[in, out]`.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// A parameter as PyTorch's reference scripts write it (`[out, in]` weights).
#[derive(serde::Deserialize)]
pub struct TorchParam {
    /// Its name (`actor.0.weight`...).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub data: Vec<f32>,
}

/// Replaces the parameters of `module`, in visiting order, by `params` (converted to Burn's
/// layout).
pub fn with_torch_params<Bk: Backend, M: Module<Bk>>(module: M, params: &[TorchParam]) -> M {
    let params: Vec<Vec<f32>> = params
        .iter()
        .map(|p| {
            if p.name.ends_with("weight") {
                transpose(&p.data, p.shape[0], p.shape[1])
            } else {
                p.data.clone()
            }
        })
        .collect();
    module.map(&mut Load {
        params: params.into_iter(),
    })
}

struct Load {
    params: std::vec::IntoIter<Vec<f32>>,
}

impl<Bk: Backend> ModuleMapper<Bk> for Load {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        let data = self
            .params
            .next()
            .expect("as many fixture parameters as module parameters");
        param.map(|t| {
            let shape = t.dims();
            let device = t.device();
            Tensor::<Bk, D>::from_data(TensorData::new(data, shape), &device).require_grad()
        })
    }
}

/// The gradient of every parameter, in visiting order, in PyTorch's layout.
pub struct Grads<'a> {
    /// The gradients.
    pub grads: &'a GradientsParams,
    /// The collected gradients.
    pub out: Vec<Vec<f32>>,
}

impl ModuleVisitor<AB> for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let g = self
            .grads
            .get::<B, D>(param.id)
            .expect("every parameter has a gradient");
        let dims = g.dims();
        let data = g.into_data().to_vec::<f32>().unwrap();
        self.out.push(if D == 2 && dims[0] > 1 {
            transpose(&data, dims[0], dims[1])
        } else {
            data
        });
    }
}

pub fn close(name: &str, got: f32, want: f32) {
    let tol = 2e-5 * (1.0 + want.abs());
    assert!(
        (got - want).abs() <= tol,
        "{name}: got {got}, PyTorch {want}"
    );
}
