//! Answers on rights reused for a moment: a page's hundreds of requests ask the same questions
//! (who holds this session, which space `owner/name` is, may they open this port). An answer
//! holds only while nothing that may take a right away was announced since it was read
//! ([`crate::live::Notifier::rights_generation`]) and for a moment at most, so that what is not
//! announced (an expiry) still stops being served within a second.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::collections::BTreeSet;

use app::api::ssr::Caller;
use app::api::templates::Feature;
use app::ids::{SpaceId, UserId};

use super::apps::tickets::AppSession;

/// How long who holds a session or a token is reused: the answer's expiry is not announced.
const CALLER_TTL: Duration = Duration::from_millis(500);
/// How long the space an `owner/name` address names is reused (a rename is announced).
const NAME_TTL: Duration = Duration::from_secs(1);
const MOST_ANSWERS: usize = 16_384;

/// The answers every request of a door asks again, kept on this server.
pub struct Remembered {
    /// Who presented a session (`session:{id}`) or an API token (`token:{its hash}`).
    pub callers: Recent<String, Caller>,
    /// The live space named `name` of the user named `owner`.
    pub spaces_by_name: Recent<(String, String), SpaceId>,
    /// Who an app cookie (by its hash) signs in on an app host, to which port of which space.
    pub app_sessions: Recent<(String, String), AppSession>,
    /// The features a user may use, from the rules of everyone, their groups and their own
    /// (every page of spaces and every space's door asks it of the owner and the caller).
    pub allowed_features: Recent<UserId, BTreeSet<Feature>>,
    /// What a user's groups add to their quota (shown on every dashboard; the quota's check
    /// at a change reads them afresh, in its transaction).
    pub quota_sources: Recent<UserId, Vec<crate::domain::quota::Contribution>>,
}

impl Default for Remembered {
    fn default() -> Self {
        Self {
            callers: Recent::new(CALLER_TTL, MOST_ANSWERS),
            spaces_by_name: Recent::new(NAME_TTL, MOST_ANSWERS),
            app_sessions: Recent::new(CALLER_TTL, MOST_ANSWERS),
            allowed_features: Recent::new(CALLER_TTL, MOST_ANSWERS),
            quota_sources: Recent::new(CALLER_TTL, MOST_ANSWERS),
        }
    }
}

/// Answers to questions `K`, each kept with when it was read and at which rights generation.
pub struct Recent<K, V> {
    answers: Mutex<HashMap<K, (Instant, u64, V)>>,
    keep_for: Duration,
    most: usize,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// Answers reused for `keep_for` at most; beyond `most` answers, all are dropped.
    pub fn new(keep_for: Duration, most: usize) -> Self {
        Self {
            answers: Mutex::default(),
            keep_for,
            most,
        }
    }

    /// The answer to `question` read at `generation`, while that is still the current one.
    pub fn get(&self, question: &K, generation: u64) -> Option<V> {
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        answers
            .get(question)
            .filter(|(at, read_at, _)| *read_at == generation && at.elapsed() < self.keep_for)
            .map(|(_, _, answer)| answer.clone())
    }

    /// Keeps `answer`, read from the database after `generation` was taken.
    pub fn put(&self, question: K, generation: u64, answer: V) {
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        if answers.len() >= self.most {
            answers.clear();
        }
        answers.insert(question, (Instant::now(), generation, answer));
    }

    /// The kept answer to `question`, else `read`'s (kept when it is `Some`). `generation` must
    /// be taken before `read` looks at the database: a change written meanwhile makes the
    /// answer stale, and the generation it is kept with is then already behind.
    pub async fn or_read<E>(
        &self,
        question: K,
        generation: u64,
        read: impl Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E> {
        if let Some(answer) = self.get(&question, generation) {
            return Ok(Some(answer));
        }
        let answer = read.await?;
        if let Some(answer) = &answer {
            self.put(question, generation, answer.clone());
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_holds_only_at_its_generation_for_its_question_and_for_a_moment() {
        let recent = Recent::<&str, u32>::new(Duration::from_millis(200), 16);
        recent.put("a", 7, 1);
        assert_eq!(recent.get(&"a", 7), Some(1));
        // Something that may take a right away was announced since.
        assert_eq!(recent.get(&"a", 8), None);
        assert_eq!(recent.get(&"b", 7), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(recent.get(&"a", 7), None);
    }

    #[test]
    fn past_its_most_answers_all_are_dropped() {
        let recent = Recent::<u32, u32>::new(Duration::from_secs(60), 2);
        recent.put(1, 0, 1);
        recent.put(2, 0, 2);
        recent.put(3, 0, 3);
        assert_eq!(recent.get(&1, 0), None);
        assert_eq!(recent.get(&3, 0), Some(3));
    }

    #[tokio::test]
    async fn only_found_answers_are_kept() {
        let recent = Recent::<u32, u32>::new(Duration::from_secs(60), 16);
        let none = recent.or_read(1, 0, async { Ok::<_, ()>(None) }).await;
        assert_eq!(none, Ok(None));
        let read = recent.or_read(1, 0, async { Ok::<_, ()>(Some(5)) }).await;
        assert_eq!(read, Ok(Some(5)));
        let kept = recent
            .or_read(1, 0, async { Err::<Option<u32>, _>("not asked") })
            .await;
        assert_eq!(kept, Ok(Some(5)));
        let stale = recent.or_read(1, 1, async { Ok::<_, ()>(Some(6)) }).await;
        assert_eq!(stale, Ok(Some(6)));
    }
}
