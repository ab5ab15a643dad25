//! `word_count_rs`: the word count of the Python and TypeScript examples, written
//! with the Rust SDK, so `cargo xtask bench-runtime` compares the three languages
//! on the same work.

use std::collections::HashSet;

use moat_sdk::{Json, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
struct Args {
    /// The text to count.
    text: String,
    /// Also count distinct words (case-insensitive).
    #[serde(default)]
    unique: bool,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct Counts {
    words: u64,
    lines: u64,
    chars: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_words: Option<u64>,
}

/// Counts the words, lines and characters of a text.
#[tool(read_only, idempotent)]
fn rs_word_count(args: Args) -> Result<Json<Counts>, String> {
    let words = args.text.split_whitespace();
    let unique_words = args.unique.then(|| words.clone().map(str::to_lowercase).collect::<HashSet<_>>().len() as u64);
    Ok(Json(Counts {
        words: words.count() as u64,
        lines: args.text.lines().count() as u64,
        chars: args.text.chars().count() as u64,
        unique_words,
    }))
}

moat_sdk::plugin!(WordCount { tools: [rs_word_count] });
