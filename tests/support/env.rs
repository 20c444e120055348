//! Service locations, exported by scripts/test. Missing ones fail the test with an instruction:
//! a test that needs MongoDB or Redis never skips silently.

pub const JWT_SECRET: &str = "rust-tests-secret-0123456789abcdefghij";
pub const API_KEY: &str = "rust-tests-admin-key-0123456789abcdef";

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with scripts/test, which starts Redis and SecantusDB and exports it")
    })
}

pub fn mongodb_uri() -> String {
    required("SB_TEST_MONGODB_URI")
}

pub fn redis_url() -> String {
    required("SB_TEST_REDIS_URL")
}

pub fn seeds_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/seeds").to_owned()
}

pub fn token(user: &str, role: Option<&str>) -> String {
    switchboard::auth::mint(JWT_SECRET, user, role, 3600, None).expect("mint token")
}
