//! The rules of a repository a space clones: which URLs, branches and folders are accepted (a
//! refusal says what is wanted), the folder it goes to by default, and how what git prints is
//! kept (progress lines collapsed to their last state, bounded).

/// Longest repository URL.
pub const URL_MAX: usize = 500;
/// Longest branch and folder.
pub const NAME_MAX: usize = 200;
/// Most of a setup's log kept (its end).
pub const LOG_MAX: usize = 64 * 1024;

/// A repository to clone, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub url: String,
    pub branch: Option<String>,
    /// Relative to the home.
    pub folder: String,
}

fn plain_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Checks a repository URL (surrounding blanks removed): `https://`, `http://`, `git://`,
/// `ssh://` or `user@host:path`, without a password or token in it.
pub fn url(text: &str) -> Result<String, String> {
    let url = text.trim();
    if url.is_empty() {
        return Err(
            "type the repository's URL, such as https://github.com/owner/project.git".into(),
        );
    }
    if url.chars().count() > URL_MAX {
        return Err(format!("a repository URL has at most {URL_MAX} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.starts_with('-') {
        return Err(
            "a repository URL has no blanks or control characters and does not start with `-`"
                .into(),
        );
    }
    if let Some((scheme, _)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "https" | "http" | "ssh" | "git") {
            return Err(format!(
                "`{scheme}://` repositories are not supported: use https://, ssh:// or user@host:path"
            ));
        }
        let parsed =
            url::Url::parse(url).map_err(|e| format!("this is not a repository URL: {e}"))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(
                "a repository URL names a host, such as https://github.com/owner/project".into(),
            );
        }
        if parsed.password().is_some() || (scheme != "ssh" && !parsed.username().is_empty()) {
            return Err("a repository URL must not carry a user name, password or token (`https://user:token@…`): Hangar does not keep credentials in URLs; give the URL without them".into());
        }
        if parsed.path().trim_matches('/').is_empty() {
            return Err("a repository URL names the repository's path, such as https://github.com/owner/project".into());
        }
        return Ok(url.to_owned());
    }
    // The scp-like form: user@host:path.
    let Some((user_host, path)) = url.split_once(':') else {
        return Err("a repository URL starts with https://, ssh:// or is user@host:path".into());
    };
    let Some((user, host)) = user_host.split_once('@') else {
        return Err("a repository URL starts with https://, ssh:// or is user@host:path".into());
    };
    if user.is_empty()
        || !user.chars().all(plain_name_char)
        || host.is_empty()
        || !host.chars().all(plain_name_char)
        || host.starts_with(['.', '-'])
    {
        return Err(
            "in user@host:path, the user and the host are letters, digits, `.`, `_` and `-`".into(),
        );
    }
    if path.is_empty() || path.starts_with('-') || path.contains('@') {
        return Err("in user@host:path, the path names the repository, such as git@github.com:owner/project.git".into());
    }
    Ok(url.to_owned())
}

/// The repository's name from its URL (`project` of `…/project.git`), when it has a usable one.
pub fn name_of(url: &str) -> Option<String> {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, path)| path)?,
        None => url.split_once(':').map(|(_, path)| path)?,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && name.chars().all(plain_name_char))
    .then(|| name.to_owned())
}

/// Checks a branch (or tag) name as git allows it, within letters, digits, `.`, `_`, `-`, `/`.
pub fn branch(text: &str) -> Result<String, String> {
    let branch = text.trim();
    let wrong = || {
        Err(format!(
            "a branch has 1 to {NAME_MAX} characters: letters, digits, `.`, `_`, `-` and `/`, not starting with `-`, `.` or `/`, without `..` or `//`, not ending with `/`, `.` or `.lock`"
        ))
    };
    if branch.is_empty()
        || branch.len() > NAME_MAX
        || !branch.chars().all(|c| plain_name_char(c) || c == '/')
        || branch.starts_with(['-', '.', '/'])
        || branch.ends_with(['/', '.'])
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch.contains("/.")
    {
        return wrong();
    }
    Ok(branch.to_owned())
}

/// Checks a folder relative to the home (a leading `~/` is dropped): no `..`, no absolute path.
pub fn folder(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let folder = trimmed
        .strip_prefix("~/")
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    let wrong = || {
        Err(format!(
            "the folder is relative to the home (such as `src/project`): 1 to {NAME_MAX} characters of letters, digits, `.`, `_`, `-` and `/`, without `..`, not starting with `/` or `-`"
        ))
    };
    if folder.is_empty()
        || folder.len() > NAME_MAX
        || !folder.chars().all(|c| plain_name_char(c) || c == '/')
        || folder.starts_with(['/', '-'])
    {
        return wrong();
    }
    if folder
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == ".." || part.starts_with('-'))
    {
        return wrong();
    }
    Ok(folder.to_owned())
}

/// Whether `url` may be cloned by a template allowing `prefixes` (none: any).
pub fn allowed_by(url: &str, prefixes: &[String]) -> bool {
    prefixes.is_empty() || prefixes.iter().any(|p| url.starts_with(p.as_str()))
}

/// Checks a whole repository: the URL, the branch if any, the folder (by default the
/// repository's name). The error names the field.
pub fn check(
    url_text: &str,
    branch_text: Option<&str>,
    folder_text: Option<&str>,
) -> Result<Repository, (&'static str, String)> {
    let url = url(url_text).map_err(|e| ("url", e))?;
    let branch = branch_text
        .filter(|b| !b.trim().is_empty())
        .map(branch)
        .transpose()
        .map_err(|e| ("branch", e))?;
    let folder = match folder_text.filter(|f| !f.trim().is_empty()) {
        Some(f) => folder(f).map_err(|e| ("folder", e))?,
        None => name_of(&url).ok_or((
            "folder",
            "the repository's name cannot be read from its URL: name the folder to clone into"
                .to_owned(),
        ))?,
    };
    Ok(Repository {
        url,
        branch,
        folder,
    })
}

/// Adds `bytes` to a setup's log as a terminal would show them: a carriage return starts its
/// line again (git's progress counts rewrite one line), and only the last [`LOG_MAX`] bytes are
/// kept.
pub fn append_log(log: &mut String, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for c in text.chars() {
        match c {
            '\r' => {
                // Back to the start of the line; what follows replaces it.
                let start = log.rfind('\n').map_or(0, |i| i + 1);
                log.truncate(start);
            }
            c => log.push(c),
        }
    }
    if log.len() > LOG_MAX {
        let mut cut = log.len() - LOG_MAX;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        log.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_the_three_kinds_pass_and_credentials_do_not() {
        for good in [
            "https://github.com/owner/project.git",
            "http://10.0.0.1:8080/project",
            "git://git.example.org/project",
            "ssh://git@host.example:2222/owner/project.git",
            "git@github.com:owner/project.git",
        ] {
            assert_eq!(url(good).as_deref(), Ok(good), "{good}");
        }
        for (bad, says) in [
            ("https://user:pass@github.com/o/p", "must not carry"),
            ("https://token@github.com/o/p", "must not carry"),
            ("ssh://git:secret@host/o/p", "must not carry"),
            ("file:///etc/passwd", "not supported"),
            ("ext::sh -c touch% /tmp/x", "blanks"),
            ("-uhttps://x/y", "does not start"),
            ("https://github.com/", "path"),
            ("github.com/o/p", "starts with"),
            ("git@host:--upload-pack=x", "path"),
            ("", "type the repository"),
        ] {
            let error = url(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
        assert!(url(&format!("https://h/{}", "a".repeat(URL_MAX))).is_err());
    }

    #[test]
    fn the_default_folder_is_the_repository_name() {
        assert_eq!(
            name_of("https://github.com/o/project.git").as_deref(),
            Some("project")
        );
        assert_eq!(name_of("git@github.com:o/tool").as_deref(), Some("tool"));
        assert_eq!(name_of("git://h/a/b/").as_deref(), Some("b"));
        assert_eq!(name_of("https://h/o/.."), None);
        let checked = check("https://h/o/p.git", Some(" "), None);
        assert_eq!(checked.as_ref().map(|c| c.folder.as_str()), Ok("p"));
        assert_eq!(checked.map(|c| c.branch), Ok(None));
    }

    #[test]
    fn branches_and_folders_stay_inside() {
        assert_eq!(branch("feature/x-1").as_deref(), Ok("feature/x-1"));
        for bad in ["-x", "a..b", "a b", "a/", ".x", "x.lock", "a//b", "a/.b"] {
            assert!(branch(bad).is_err(), "{bad}");
        }
        assert_eq!(folder("~/src/project").as_deref(), Ok("src/project"));
        assert_eq!(folder("work/").as_deref(), Ok("work"));
        for bad in ["../x", "/etc", "a/../b", "~", "a b", "-x", "a/./b"] {
            assert!(folder(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check("https://h/o/p", None, Some("../x")).unwrap_err().0,
            "folder"
        );
    }

    #[test]
    fn prefixes_restrict_only_when_given() {
        let prefixes = vec!["https://git.example.org/team/".to_owned()];
        assert!(allowed_by("https://git.example.org/team/p", &prefixes));
        assert!(!allowed_by("https://github.com/p", &prefixes));
        assert!(allowed_by("https://github.com/p", &[]));
    }

    #[test]
    fn progress_collapses_and_the_log_keeps_its_end() {
        let mut log = String::new();
        append_log(&mut log, b"Cloning into 'p'...\nReceiving objects:  10%\r");
        append_log(
            &mut log,
            b"Receiving objects:  50%\rReceiving objects: 100%, done.\n",
        );
        assert_eq!(log, "Cloning into 'p'...\nReceiving objects: 100%, done.\n");
        append_log(&mut log, "é".repeat(LOG_MAX).as_bytes());
        assert!(log.len() <= LOG_MAX && log.ends_with('é'));
    }
}
