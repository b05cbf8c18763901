//! What the soak's users will do, drawn up front from a seed so that a run can be repeated.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Prompt markers the KIE emulator acts on, one per way KIE fails: refusals, failed and
/// unknown generations, answers without a link, malformed and hanging answers, rate limits.
/// (A billing error is an account running dry, which the storm does to a whole account.)
pub const KIE_FAULTS: [&str; 11] = [
    "#violation",
    "#people",
    "#temporary",
    "#temporary*1",
    "#unknown",
    "#nourl",
    "#statusmalformed",
    "#hang",
    "#http500",
    "#http429",
    "#malformed",
];

/// A late result: generation takes this long instead of the usual three short stages.
pub const SLOW: &str = "#slow=15";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPlan {
    pub id: i64,
    /// Buys a credit package with Stars before ordering.
    pub buys_stars: bool,
    /// Videos in the first order.
    pub count: i64,
    /// The KIE marker of an own prompt; `None`: a template.
    pub own_prompt: Option<&'static str>,
    /// Presses the count button twice at once.
    pub double_press: bool,
    /// Blocks the bot right after ordering (and so places no second order).
    pub blocks_bot: bool,
    /// Orders the same again from the summary.
    pub repeats: bool,
}

impl UserPlan {
    pub fn videos(&self) -> i64 {
        if self.repeats && !self.blocks_bot {
            self.count * 2
        } else {
            self.count
        }
    }
}

/// Users until their videos reach `videos`; `fault_percent` of own prompts per KIE fault.
pub fn users(videos: i64, fault_percent: f64, seed: u64) -> Vec<UserPlan> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut plans = Vec::new();
    let mut planned = 0;
    let fault_share = (fault_percent / 100.0).clamp(0.0, 1.0);
    while planned < videos {
        let id = 700_000 + plans.len() as i64;
        let count = [1, 3, 3, 5][rng.random_range(0..4)];
        let draw: f64 = rng.random();
        let faults = KIE_FAULTS.len() as f64 + 1.0;
        let own_prompt = if draw < fault_share * faults {
            let index = (draw / fault_share) as usize;
            Some(KIE_FAULTS.get(index).copied().unwrap_or(SLOW))
        } else if draw < fault_share * faults + 0.1 {
            Some("")
        } else {
            None
        };
        let blocks_bot = rng.random_bool(0.03);
        let plan = UserPlan {
            id,
            buys_stars: rng.random_bool(0.2),
            count,
            own_prompt,
            double_press: rng.random_bool(0.2),
            blocks_bot,
            repeats: !blocks_bot && rng.random_bool(0.25),
        };
        planned += plan.videos();
        plans.push(plan);
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_reaches_the_videos_asked_for_and_no_more_than_one_order_beyond() {
        for videos in [1, 300, 5000] {
            let plans = users(videos, 2.0, 7);
            let total: i64 = plans.iter().map(UserPlan::videos).sum();
            assert!(total >= videos, "{total} < {videos}");
            assert!(total < videos + 10, "{total} overshoots {videos}");
        }
    }

    #[test]
    fn every_kie_fault_appears_at_about_the_share_asked_for() {
        let plans = users(20_000, 2.0, 11);
        for marker in KIE_FAULTS.iter().chain([&SLOW]) {
            let share = plans
                .iter()
                .filter(|p| p.own_prompt == Some(*marker))
                .count() as f64
                / plans.len() as f64;
            assert!(
                (0.012..0.03).contains(&share),
                "{marker}: {share:.4} of users"
            );
        }
        let blocked = plans.iter().filter(|p| p.blocks_bot).count();
        assert!(blocked > 0 && plans.iter().all(|p| !(p.blocks_bot && p.repeats)));
    }

    #[test]
    fn the_same_seed_draws_the_same_users() {
        assert_eq!(users(300, 2.0, 5), users(300, 2.0, 5));
        assert_ne!(users(300, 2.0, 5), users(300, 2.0, 6));
    }
}
