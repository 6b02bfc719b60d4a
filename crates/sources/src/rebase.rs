//! Finding a snapshot's files on this machine when the snapshot was taken
//! on another one (`--source-root DIR`).

use std::path::{Component, Path, PathBuf};

/// Where to look for files whose recorded path does not exist here.
#[derive(Clone, Debug)]
pub struct Rebase {
    /// The local directory holding the app (a checkout, an unpacked image).
    pub dir: PathBuf,
    /// The app's directory on the machine that took the snapshot, when
    /// known: paths under it are re-based exactly. Without it, the longest
    /// tail of the recorded path that exists under `dir` is taken.
    pub from: Option<PathBuf>,
}

impl Rebase {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Rebase { dir: dir.into(), from: None }
    }

    /// Re-base paths under `from` (the remote app root) onto `dir`.
    pub fn with_prefix(dir: impl Into<PathBuf>, from: impl Into<PathBuf>) -> Self {
        Rebase { dir: dir.into(), from: Some(from.into()) }
    }

    /// The local file for a recorded path, if there is one.
    pub fn find(&self, recorded: &Path) -> Option<PathBuf> {
        if let Some(from) = &self.from {
            let rest = recorded.strip_prefix(from).ok()?;
            let p = self.dir.join(rest);
            return p.exists().then_some(p);
        }
        // /srv/app/dist/app.js -> DIR/srv/app/dist/app.js, DIR/app/dist/app.js, DIR/dist/app.js, DIR/app.js.
        let parts: Vec<&std::ffi::OsStr> = recorded
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s),
                _ => None,
            })
            .collect();
        (0..parts.len()).find_map(|skip| {
            let mut p = self.dir.clone();
            p.extend(&parts[skip..]);
            p.exists().then_some(p)
        })
    }
}

/// `a/b/../c` -> `a/c` without touching the file system (the files may not exist here).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_longest_existing_tail_or_the_exact_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app/dist")).unwrap();
        std::fs::write(dir.path().join("app/dist/server.js"), "").unwrap();
        let r = Rebase::new(dir.path());
        assert_eq!(r.find(Path::new("/srv/deploy/app/dist/server.js")), Some(dir.path().join("app/dist/server.js")));
        assert_eq!(r.find(Path::new("/srv/deploy/app/dist/other.js")), None);
        let r = Rebase::with_prefix(dir.path().join("app"), "/srv/deploy");
        assert_eq!(r.find(Path::new("/srv/deploy/dist/server.js")), Some(dir.path().join("app/dist/server.js")));
        assert_eq!(r.find(Path::new("/elsewhere/dist/server.js")), None);
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/dist/../node_modules/x/./y.js")), PathBuf::from("/a/node_modules/x/y.js"));
        assert_eq!(normalize(Path::new("../src/a.ts")), PathBuf::from("../src/a.ts"));
    }
}
