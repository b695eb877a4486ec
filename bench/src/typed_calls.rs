//! Item 7: typed calls (reexec's `typed` feature) against a plain re-exec round trip,
//! measured in turns in this process, so that each ratio compares figures of one run.

use serde::{Deserialize, Serialize};

use crate::spawns::fail;
use crate::stats::Samples;

/// A small value, as a typed call of a request usually carries.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct Small {
    id: u64,
    name: String,
    flags: [bool; 4],
}

/// Returns its input's id: the smallest typed round trip with a struct each way.
#[reexec::entry("bench-typed-echo")]
fn typed_echo(small: Small) -> (u64, String) {
    (small.id, small.name)
}

/// Samples of a plain round trip (`bench-noop`), a typed call and a pool call: `rounds`
/// rounds, their order turning every round, each with one plain round trip, one typed
/// call and ten pool calls (a pool call is short: more of them, for as steady a median).
pub(crate) fn measure(rounds: usize) -> [Samples; 3] {
    let small = Small {
        id: 7,
        name: "a small request".to_owned(),
        flags: [true, false, true, false],
    };
    let pool = reexec::Pool::new::<typed_echo>(1)
        .unwrap_or_else(|error| fail(&format!("starting the pool: {error}")));
    let [mut plain, mut typed, mut pooled] = [(); 3].map(|()| Samples::default());
    for round in 0..rounds {
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => plain.time(|| {
                    let status = reexec::Command::new("bench-noop").status();
                    if !status.is_ok_and(|status| status.success()) {
                        fail("a plain round trip failed");
                    }
                }),
                1 => typed.time(|| {
                    if reexec::call::<typed_echo>(&small).map(|(id, _)| id).ok() != Some(7) {
                        fail("a typed call failed");
                    }
                }),
                _ => {
                    for _ in 0..10 {
                        pooled.time(|| {
                            if pool.call(&small).map(|(id, _)| id).ok() != Some(7) {
                                fail("a pool call failed");
                            }
                        });
                    }
                }
            }
        }
    }
    [plain, typed, pooled]
}

/// `count` typed calls of item 7 and nothing else, for profilers (`--once typed`).
pub(crate) fn once(count: usize) {
    let small = Small {
        id: 7,
        name: "a small request".to_owned(),
        flags: [true, false, true, false],
    };
    for _ in 0..count {
        if reexec::call::<typed_echo>(&small).map(|(id, _)| id).ok() != Some(7) {
            fail("a typed call failed");
        }
    }
}
