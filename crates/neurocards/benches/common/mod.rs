//! What the benchmarks share: their settings from the environment and the machine they
//! ran on, printed with every table.

#![allow(dead_code)]

pub fn machine() -> String {
    neurocards::chaos::machine()
}

pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}
