//! "Did you mean" suggestions within a small edit distance.

/// Largest edit distance at which a candidate is still suggested.
const MAX_DISTANCE: usize = 3;

/// The candidate closest to `word`, if one is within [`MAX_DISTANCE`] edits.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= MAX_DISTANCE)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_owned())
}
