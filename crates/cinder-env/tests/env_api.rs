//! The env contract on the built-in envs: the checker, wrappers, and typed errors for bad input.

use cinder_env::classic_control::{
    Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum,
};
use cinder_env::space::Space;
use cinder_env::wrappers::{ClipAction, RecordEpisodeStatistics, TimeLimit};
use cinder_env::{Env, EnvError, Info, Step, Value, check_env, make, registry};

#[test]
fn check_env_passes_on_every_registered_env() {
    for id in registry::ids() {
        let mut env = make(id).unwrap();
        check_env(&mut env).unwrap_or_else(|e| panic!("{id}: {e}"));
    }
}

#[test]
fn check_env_passes_on_typed_envs() {
    check_env(&mut TimeLimit::new(CartPole::new(), 500).unwrap()).unwrap();
    check_env(&mut TimeLimit::new(Acrobot::new(), 500).unwrap()).unwrap();
    check_env(&mut TimeLimit::new(MountainCar::new(), 200).unwrap()).unwrap();
    check_env(&mut TimeLimit::new(MountainCarContinuous::new(), 999).unwrap()).unwrap();
    check_env(&mut TimeLimit::new(Pendulum::new(), 200).unwrap()).unwrap();
    check_env(&mut RecordEpisodeStatistics::new(Pendulum::new())).unwrap();
}

/// An env that breaks the contract in a chosen way, to show that `check_env` notices.
struct Broken {
    flaw: Flaw,
    t: u64,
    calls: u64,
    ended: bool,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Flaw {
    None,
    ObsOutOfSpace,
    NanReward,
    Nondeterministic,
    IgnoresEnd,
}

impl Broken {
    fn new(flaw: Flaw) -> Self {
        Self {
            flaw,
            t: 0,
            calls: 0,
            ended: false,
        }
    }
}

impl Env for Broken {
    type Obs = [f32; 1];
    type Action = usize;
    fn observation_space(&self) -> Space {
        Space::Box(cinder_env::BoxSpace::uniform_bounds(-1.0, 1.0, 1))
    }
    fn action_space(&self) -> Space {
        Space::Discrete(cinder_env::Discrete::new(2))
    }
    fn reset(&mut self, _seed: Option<u64>) -> cinder_env::Result<([f32; 1], Info)> {
        self.t = 0;
        self.ended = false;
        self.calls += 1;
        let x = if self.flaw == Flaw::Nondeterministic {
            0.1 * (self.calls % 3) as f32
        } else {
            0.0
        };
        Ok(([x], Info::default()))
    }
    fn step(&mut self, _action: &usize) -> cinder_env::Result<Step<[f32; 1]>> {
        if self.ended && self.flaw != Flaw::IgnoresEnd {
            return Err(EnvError::EpisodeEnded {
                reason: "terminated",
            });
        }
        self.t += 1;
        let terminated = self.t == 10;
        self.ended = terminated;
        Ok(Step {
            obs: [if self.flaw == Flaw::ObsOutOfSpace {
                2.0
            } else {
                0.0
            }],
            reward: if self.flaw == Flaw::NanReward {
                f64::NAN
            } else {
                1.0
            },
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }
}

#[test]
fn check_env_catches_broken_envs() {
    check_env(&mut Broken::new(Flaw::None)).unwrap();
    for (flaw, check) in [
        (Flaw::ObsOutOfSpace, "observation in space"),
        (Flaw::NanReward, "reward finite"),
        (Flaw::Nondeterministic, "seeded reset deterministic"),
        (Flaw::IgnoresEnd, "step after episode end refused"),
    ] {
        match check_env(&mut Broken::new(flaw)) {
            Err(EnvError::CheckFailed { check: got, .. }) => assert_eq!(got, check, "{flaw:?}"),
            other => panic!("{flaw:?}: expected a failed check, got {other:?}"),
        }
    }
}

#[test]
fn bad_actions_are_typed_errors() {
    let mut cartpole = make("CartPole-v1").unwrap();
    assert_eq!(
        cartpole.step(&Value::Discrete(0)).unwrap_err(),
        EnvError::ResetNeeded
    );
    cartpole.reset(Some(0)).unwrap();
    assert_eq!(
        cartpole.step(&Value::Discrete(2)).unwrap_err(),
        EnvError::ActionOutOfRange { action: 2, n: 2 }
    );
    assert_eq!(
        cartpole.step(&Value::Continuous(vec![1.0])).unwrap_err(),
        EnvError::ActionKind {
            expected: "discrete",
            got: "continuous"
        }
    );

    let mut pendulum = make("Pendulum-v1").unwrap();
    pendulum.reset(Some(0)).unwrap();
    assert_eq!(
        pendulum
            .step(&Value::Continuous(vec![0.0, 1.0]))
            .unwrap_err(),
        EnvError::ActionShape {
            expected: 1,
            got: 2
        }
    );
    assert!(matches!(
        pendulum.step(&Value::Continuous(vec![f32::NAN])),
        Err(EnvError::NonFiniteAction { index: 0, .. })
    ));
    assert!(matches!(
        pendulum.step(&Value::Continuous(vec![f32::NEG_INFINITY])),
        Err(EnvError::NonFiniteAction { index: 0, .. })
    ));
    assert_eq!(
        pendulum.step(&Value::Discrete(1)).unwrap_err(),
        EnvError::ActionKind {
            expected: "continuous",
            got: "discrete"
        }
    );
    // A finite action outside the bounds is clipped by the dynamics, not refused.
    assert!(pendulum.step(&Value::Continuous(vec![10.0])).is_ok());

    let message = make("Cartpole-v1").err().unwrap().to_string();
    assert!(message.contains("unknown environment id") && message.contains("CartPole-v1"));
}

#[test]
fn stepping_after_the_end_is_refused_until_reset() {
    let mut env = make("Pendulum-v1").unwrap();
    env.reset(Some(1)).unwrap();
    for t in 1..=200 {
        let step = env.step(&Value::Continuous(vec![0.0])).unwrap();
        assert_eq!(step.truncated, t == 200);
        assert!(!step.terminated);
    }
    assert_eq!(
        env.step(&Value::Continuous(vec![0.0])).unwrap_err(),
        EnvError::EpisodeEnded {
            reason: "truncated"
        }
    );
    env.reset(None).unwrap();
    assert!(env.step(&Value::Continuous(vec![0.0])).is_ok());
}

#[test]
fn time_limit_can_truncate_a_terminating_step() {
    // CartPole pushed right always terminates in under 20 steps; find its length, then set the
    // limit to exactly that: the last step is both terminated and truncated, as in Gymnasium.
    let mut env = CartPole::new();
    env.reset(Some(3)).unwrap();
    let mut length = 0;
    while !env.step(&1).unwrap().terminated {
        length += 1;
    }
    length += 1;
    let mut limited = TimeLimit::new(CartPole::new(), length).unwrap();
    limited.reset(Some(3)).unwrap();
    let mut last = None;
    for _ in 0..length {
        last = Some(limited.step(&1).unwrap());
    }
    let last = last.unwrap();
    assert!(last.terminated && last.truncated);
    assert!(TimeLimit::new(CartPole::new(), 0).is_err());
}

#[test]
fn record_episode_statistics_reports_return_and_length() {
    let mut env = RecordEpisodeStatistics::with_buffer_length(
        TimeLimit::new(MountainCar::new(), 30).unwrap(),
        2,
    );
    for episode in 0..3 {
        env.reset(Some(episode)).unwrap();
        loop {
            let step = env.step(&1).unwrap();
            assert_eq!(step.info.episode.is_some(), step.done());
            if let Some(stats) = step.info.episode {
                assert_eq!(stats.l, 30);
                assert_eq!(stats.r, -30.0);
                assert!(stats.t >= 0.0);
                break;
            }
        }
    }
    assert_eq!(env.episode_count(), 3);
    assert_eq!(env.return_queue().len(), 2);
    assert_eq!(
        env.length_queue().iter().copied().collect::<Vec<_>>(),
        [30, 30]
    );
}

#[test]
fn clip_action_clips_before_the_env_sees_the_action() {
    let mut clipped = ClipAction::new(MountainCarContinuous::new()).unwrap();
    let mut plain = MountainCarContinuous::new();
    clipped.reset(Some(4)).unwrap();
    plain.reset(Some(4)).unwrap();
    let a = clipped.step(&[3.0]).unwrap();
    let b = plain.step(&[1.0]).unwrap();
    assert_eq!(a.obs, b.obs);
    // The env charges the action it receives: the clipped one.
    assert_eq!(a.reward, b.reward);
    match clipped.action_space() {
        Space::Box(b) => assert!(b.low[0].is_infinite() && b.high[0].is_infinite()),
        other => panic!("{other}"),
    }
    assert!(ClipAction::new(CartPole::new()).is_err());
}

#[test]
fn spaces_match_gymnasium() {
    let spec = |id| make(id).unwrap();
    match spec("CartPole-v1").observation_space() {
        Space::Box(b) => {
            assert_eq!(b.high, [4.8, f32::INFINITY, 0.41887903, f32::INFINITY]);
            assert_eq!(b.shape, [4]);
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        spec("Acrobot-v1").action_space(),
        Space::Discrete(cinder_env::Discrete::new(3))
    );
    match spec("Pendulum-v1").action_space() {
        Space::Box(b) => assert_eq!((b.low, b.high), (vec![-2.0], vec![2.0])),
        other => panic!("{other}"),
    }
    assert_eq!(
        registry::spec("Pendulum-v1").unwrap().reward_threshold,
        None
    );
    assert_eq!(
        registry::spec("CartPole-v1").unwrap().reward_threshold,
        Some(475.0)
    );
}

/// Steps `env` with actions drawn from `rng`, resetting at episode ends; returns everything seen.
fn roll(
    env: &mut cinder_env::DynEnv,
    rng: &mut cinder_env::rng::NpRandom,
    steps: usize,
) -> Vec<Step<Vec<f32>>> {
    let space = env.action_space();
    (0..steps)
        .map(|_| {
            let step = env.step(&space.sample(rng)).unwrap();
            if step.done() {
                env.reset(None).unwrap();
            }
            step
        })
        .collect()
}

#[test]
fn saved_state_continues_every_env_exactly() {
    for id in registry::ids() {
        let mut env = make(id).unwrap();
        env.reset(Some(11)).unwrap();
        let mut rng = cinder_env::rng::NpRandom::from_seed(5);
        roll(&mut env, &mut rng, 300);
        let state = env.save_state().unwrap();
        let rng_at_save = rng.clone();
        let expected = roll(&mut env, &mut rng, 400);

        // A fresh env, never reset, takes the state and continues identically (including its
        // time limit's counter and its random stream across later resets).
        let mut restored = make(id).unwrap();
        restored.load_state(&state).unwrap();
        let mut rng = rng_at_save;
        assert_eq!(roll(&mut restored, &mut rng, 400), expected, "{id}");
    }
    // A state of another env is refused with a clear error and leaves the env usable.
    let cartpole_state = {
        let mut env = make("CartPole-v1").unwrap();
        env.reset(Some(1)).unwrap();
        env.save_state().unwrap()
    };
    let mut pendulum = make("Pendulum-v1").unwrap();
    let err = pendulum.load_state(&cartpole_state).unwrap_err();
    assert!(matches!(err, EnvError::BadState(_)), "{err}");
    pendulum.reset(Some(1)).unwrap();
}

#[test]
fn saved_state_continues_vector_envs_exactly() {
    use cinder_env::classic_control::CartPoleVec;
    use cinder_env::vector::{AutoresetMode, SyncVectorEnv, VectorEnv};
    fn run<V: VectorEnv<Action = usize>>(
        envs: &mut V,
        rng: &mut cinder_env::rng::NpRandom,
        steps: usize,
    ) -> Vec<(Vec<f32>, Vec<f64>, Vec<bool>)> {
        (0..steps)
            .map(|_| {
                let actions: Vec<usize> = (0..envs.num_envs())
                    .map(|_| rng.integers(2) as usize)
                    .collect();
                let s = envs.step(&actions).unwrap();
                (s.obs.to_vec(), s.rewards.to_vec(), s.truncated.to_vec())
            })
            .collect()
    }
    for mode in [AutoresetMode::SameStep, AutoresetMode::NextStep] {
        let mut a = CartPoleVec::new(3, mode).unwrap();
        a.reset(Some(3)).unwrap();
        let mut b =
            SyncVectorEnv::from_fn(3, mode, |_| TimeLimit::new(CartPole::new(), 500).unwrap())
                .unwrap();
        b.reset(Some(3)).unwrap();
        let mut rng = cinder_env::rng::NpRandom::from_seed(9);
        run(&mut a, &mut rng.clone(), 250);
        run(&mut b, &mut rng, 250);
        let (sa, sb) = (a.save_state().unwrap(), b.save_state().unwrap());
        let mut rng = cinder_env::rng::NpRandom::from_seed(10);
        let ea = run(&mut a, &mut rng.clone(), 600);
        let eb = run(&mut b, &mut rng.clone(), 600);
        assert_eq!(ea, eb);
        let mut a2 = CartPoleVec::new(3, mode).unwrap();
        a2.load_state(&sa).unwrap();
        let mut b2 =
            SyncVectorEnv::from_fn(3, mode, |_| TimeLimit::new(CartPole::new(), 500).unwrap())
                .unwrap();
        b2.load_state(&sb).unwrap();
        assert_eq!(run(&mut a2, &mut rng.clone(), 600), ea);
        assert_eq!(run(&mut b2, &mut rng, 600), eb);
        // A state for another number of envs is refused.
        let mut wrong = CartPoleVec::new(2, mode).unwrap();
        assert!(matches!(wrong.load_state(&sa), Err(EnvError::BadState(_))));
    }
}
