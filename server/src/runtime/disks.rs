//! Volumes whose size is a hard limit: each volume is an ext4 filesystem in an image file of
//! its declared size, attached to a loop device, which Docker's local driver mounts
//! (`type=ext4`, `device=<link>`). A write past the size fails with ENOSPC inside the space
//! and touches nothing else on the host.
//!
//! The files live under `<data dir>/volumes/<installation>/<space>/`: `<volume>.img` (the
//! sparse image) and `<volume>.dev`, a symbolic link to its loop device that Docker's volume
//! names as its device, so that the volume survives the device changing number. Loop devices
//! do not survive a reboot: [`DiskImages::attach`] finds or makes the image's device again
//! and points the link at it, before every start and at Hangar's start-up. Everything here
//! blocks (files, `losetup`, `mkfs.ext4`): callers run it on a blocking thread.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Suffix of an image file, and of the link to its loop device.
const IMAGE_SUFFIX: &str = ".img";
const LINK_SUFFIX: &str = ".dev";

/// The programs this needs, all from util-linux and e2fsprogs.
const TOOLS: [&str; 3] = ["losetup", "mkfs.ext4", "debugfs"];

/// How often `losetup --find` is tried: another process may take the free device first.
const ATTACH_ATTEMPTS: usize = 5;

/// This installation's disk images on this host.
#[derive(Debug)]
pub struct DiskImages {
    /// `<data dir>/volumes/<installation>`, canonical (loop devices report their backing
    /// file by its canonical path).
    root: PathBuf,
}

/// One image found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundImage {
    pub space_id: String,
    pub volume: String,
    pub image: PathBuf,
}

/// Where a program is, looking in `PATH` and the system folders root's `PATH` has.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a program; the error carries what it wrote on stderr.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let path = find_program(program).ok_or_else(|| format!("`{program}` is not installed"))?;
    let output = Command::new(path)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "`{program}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Why this host cannot make sized volumes, if it cannot.
pub fn host_support() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("Hangar is not running as root (loop devices need it)".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Err("this host has no /dev/loop-control (no loop device support)".into());
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("ext4"))
    {
        return Err("this kernel has no ext4".into());
    }
    if let Some(missing) = TOOLS.iter().find(|tool| find_program(tool).is_none()) {
        return Err(format!(
            "`{missing}` is not installed (apt-get install util-linux e2fsprogs)"
        ));
    }
    Ok(())
}

/// A name Hangar made (a space id or a volume name): no path separators, no dots first.
pub(crate) fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The loop devices (`loopN`) whose backing file is `image`.
fn loops_backed_by(image: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let wanted = image.to_string_lossy();
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with("loop"))
        .filter(|name| {
            std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
                .is_ok_and(|backing| backing.trim_end() == wanted)
        })
        .collect()
}

/// `major:minor` of a block device (`loopN`).
fn device_number(device: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/block/{device}/dev"))
        .ok()
        .map(|n| n.trim().to_owned())
}

/// Where a device (`major:minor`) is mounted in this mount namespace, if it is.
fn mount_point_of(number: &str) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let number_field = fields.nth(2)?;
        let mount_point = fields.nth(1)?;
        (number_field == number).then(|| PathBuf::from(unescape_mount_path(mount_point)))
    })
}

/// mountinfo writes spaces, tabs, newlines and backslashes in paths as octal escapes.
fn unescape_mount_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes in use on an unmounted ext4 filesystem, from its superblock (which is exact once
/// unmounted). `df` counts the same way: blocks neither free nor filesystem overhead.
pub fn ext4_used_bytes(superblock: &[u8]) -> Option<u64> {
    let u32_at = |offset: usize| -> Option<u64> {
        superblock
            .get(offset..offset + 4)
            .and_then(|b| b.try_into().ok())
            .map(|b| u64::from(u32::from_le_bytes(b)))
    };
    let magic = superblock.get(0x38..0x3A)?;
    if magic != [0x53, 0xEF] {
        return None;
    }
    let is_64bit = u32_at(0x60)? & 0x80 != 0;
    let (blocks_hi, free_hi) = if is_64bit {
        (u32_at(0x150)?, u32_at(0x158)?)
    } else {
        (0, 0)
    };
    let blocks = u32_at(0x04)? | (blocks_hi << 32);
    let free = u32_at(0x0C)? | (free_hi << 32);
    let overhead = u32_at(0x248)?;
    let block_size = 1024u64.checked_shl(u32::try_from(u32_at(0x18)?).ok()?)?;
    Some(blocks.saturating_sub(free).saturating_sub(overhead) * block_size)
}

impl DiskImages {
    /// The images of `installation` under `data_dir` (made if missing). Fails when the host
    /// cannot make sized volumes, saying why.
    pub fn open(data_dir: &Path, installation: &str) -> Result<Self, String> {
        host_support()?;
        if !plain_name(installation) {
            return Err(format!("`{installation}` is not an installation id"));
        }
        let root = data_dir.join("volumes").join(installation);
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot make {}: {e}", root.display()))?;
        let root = root
            .canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", root.display()))?;
        Ok(Self { root })
    }

    /// The folder of this installation's images.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn space_dir(&self, space_id: &str) -> Result<PathBuf, String> {
        if !plain_name(space_id) {
            return Err(format!("`{space_id}` is not a space id"));
        }
        Ok(self.root.join(space_id))
    }

    fn paths(&self, space_id: &str, volume: &str) -> Result<(PathBuf, PathBuf), String> {
        if !plain_name(volume) {
            return Err(format!("`{volume}` is not a volume name"));
        }
        let dir = self.space_dir(space_id)?;
        Ok((
            dir.join(format!("{volume}{IMAGE_SUFFIX}")),
            dir.join(format!("{volume}{LINK_SUFFIX}")),
        ))
    }

    /// Holds this installation's images still against other processes (replicas sharing
    /// the data dir) for as long as the returned file is open.
    fn lock(&self) -> Result<File, String> {
        let path = self.root.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(file)
    }

    /// Makes the volume's image (when it does not exist yet) and attaches it; returns the
    /// link to give Docker as the volume's device.
    pub fn create(&self, space_id: &str, volume: &str, size_gib: u64) -> Result<PathBuf, String> {
        let (image, link) = self.paths(space_id, volume)?;
        let _lock = self.lock()?;
        if !image.exists() {
            let dir = self.space_dir(space_id)?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
            // Made aside and renamed in place, so that an image that exists is complete.
            let partial = dir.join(format!(".{volume}.partial"));
            let made = make_filesystem(&partial, size_gib)
                .and_then(|()| std::fs::rename(&partial, &image).map_err(|e| e.to_string()));
            if let Err(e) = made {
                let _ = std::fs::remove_file(&partial);
                return Err(format!("making the {size_gib} GiB disk of `{volume}`: {e}"));
            }
        }
        self.attach_locked(&image, &link)?;
        Ok(link)
    }

    /// Makes sure the volume's image is attached and its link points at its device; `None`
    /// when the volume has no image.
    pub fn attach(&self, space_id: &str, volume: &str) -> Result<Option<PathBuf>, String> {
        let (image, link) = self.paths(space_id, volume)?;
        if !image.exists() {
            return Ok(None);
        }
        let _lock = self.lock()?;
        self.attach_locked(&image, &link)?;
        Ok(Some(link))
    }

    fn attach_locked(&self, image: &Path, link: &Path) -> Result<(), String> {
        let device = match loops_backed_by(image).into_iter().next() {
            Some(device) => format!("/dev/{device}"),
            None => self.attach_new(image)?,
        };
        if std::fs::read_link(link).is_ok_and(|target| target == Path::new(&device)) {
            return Ok(());
        }
        // Replaced in one step: Docker may resolve the link at any moment.
        let fresh = link.with_extension("dev-new");
        let _ = std::fs::remove_file(&fresh);
        std::os::unix::fs::symlink(&device, &fresh)
            .and_then(|()| std::fs::rename(&fresh, link))
            .map_err(|e| format!("cannot link {} to {device}: {e}", link.display()))
    }

    fn attach_new(&self, image: &Path) -> Result<String, String> {
        let mut last_error = String::new();
        for _ in 0..ATTACH_ATTEMPTS {
            match run(
                "losetup",
                &["--find".as_ref(), "--show".as_ref(), image.as_os_str()],
            ) {
                Ok(device) if device.starts_with("/dev/loop") => return Ok(device),
                Ok(other) => last_error = format!("losetup answered `{other}`"),
                Err(e) => last_error = e,
            }
            // Someone else took the free device between the lookup and the attach.
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(format!(
            "cannot attach {} to a loop device: {last_error}",
            image.display()
        ))
    }

    /// Detaches the volume's image and deletes it with its link; absent is fine. Docker must
    /// no longer use it (its volume removed first): a device still mounted is only detached
    /// once unmounted.
    pub fn remove(&self, space_id: &str, volume: &str) -> Result<(), String> {
        let (image, link) = self.paths(space_id, volume)?;
        let _lock = self.lock()?;
        self.remove_locked(&image, &link)?;
        self.remove_empty_space_dir(space_id);
        Ok(())
    }

    fn remove_locked(&self, image: &Path, link: &Path) -> Result<(), String> {
        for device in loops_backed_by(image) {
            run(
                "losetup",
                &["--detach".as_ref(), format!("/dev/{device}").as_ref()],
            )?;
        }
        for path in [link, image] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot delete {}: {e}", path.display())),
            }
        }
        Ok(())
    }

    fn remove_empty_space_dir(&self, space_id: &str) {
        if let Ok(dir) = self.space_dir(space_id) {
            // Fails (and stays) while other volumes of the space are in it.
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Removes an image found by [`DiskImages::list`] (an orphan), given its path.
    pub fn remove_image(&self, image: &Path) -> Result<(), String> {
        let found = self
            .list()
            .into_iter()
            .find(|f| f.image == image)
            .ok_or_else(|| format!("{} is not a disk image of Hangar's", image.display()))?;
        self.remove(&found.space_id, &found.volume)
    }

    /// Every image of this installation.
    pub fn list(&self) -> Vec<FoundImage> {
        let mut found = Vec::new();
        let Ok(spaces) = std::fs::read_dir(&self.root) else {
            return found;
        };
        for space in spaces.filter_map(Result::ok) {
            let Ok(space_id) = space.file_name().into_string() else {
                continue;
            };
            if !plain_name(&space_id) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(space.path()) else {
                continue;
            };
            for file in files.filter_map(Result::ok) {
                let name = file.file_name().to_string_lossy().into_owned();
                if let Some(volume) = name.strip_suffix(IMAGE_SUFFIX) {
                    if plain_name(volume) {
                        found.push(FoundImage {
                            space_id: space_id.clone(),
                            volume: volume.to_owned(),
                            image: file.path(),
                        });
                    }
                }
            }
        }
        found.sort_by(|a, b| a.image.cmp(&b.image));
        found
    }

    /// Attaches every image (after a reboot, none is); returns what failed.
    pub fn attach_all(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for found in self.list() {
            if let Err(e) = self.attach(&found.space_id, &found.volume) {
                errors.push(e);
            }
        }
        errors
    }

    /// Bytes in use on the volume; `None` when it has no image or cannot be read.
    pub fn used_bytes(&self, space_id: &str, volume: &str) -> Option<u64> {
        let (image, _) = self.paths(space_id, volume).ok()?;
        if !image.exists() {
            return None;
        }
        // Mounted: the filesystem's own count (its superblock on disk lags behind).
        let mounted = loops_backed_by(&image)
            .iter()
            .filter_map(|device| device_number(device))
            .find_map(|number| mount_point_of(&number));
        if let Some(mount_point) = mounted {
            let stats = rustix::fs::statvfs(&mount_point).ok()?;
            return Some(stats.f_blocks.saturating_sub(stats.f_bfree) * stats.f_frsize);
        }
        let mut superblock = [0u8; 1024];
        let mut file = File::open(&image).ok()?;
        file.seek(SeekFrom::Start(1024)).ok()?;
        file.read_exact(&mut superblock).ok()?;
        ext4_used_bytes(&superblock)
    }

    /// Bytes in use on all the sized volumes of a space (0 when it has none).
    pub fn space_used_bytes(&self, space_id: &str) -> u64 {
        let Ok(dir) = self.space_dir(space_id) else {
            return 0;
        };
        let Ok(files) = std::fs::read_dir(dir) else {
            return 0;
        };
        files
            .filter_map(Result::ok)
            .filter_map(|f| {
                let name = f.file_name().to_string_lossy().into_owned();
                name.strip_suffix(IMAGE_SUFFIX).map(str::to_owned)
            })
            .filter_map(|volume| self.used_bytes(space_id, &volume))
            .sum()
    }
}

/// A sparse file of `size_gib` GiB holding an empty ext4 filesystem.
fn make_filesystem(path: &Path, size_gib: u64) -> Result<(), String> {
    let bytes = size_gib
        .checked_mul(1 << 30)
        .ok_or_else(|| format!("{size_gib} GiB is too large"))?;
    File::create(path)
        .and_then(|file| file.set_len(bytes))
        .map_err(|e| format!("cannot make {}: {e}", path.display()))?;
    // No blocks reserved for root (spaces run as root anyway); the inode tables are written
    // lazily, once mounted, so that making even a large volume takes a moment.
    run(
        "mkfs.ext4",
        &[
            "-q".as_ref(),
            "-F".as_ref(),
            "-m".as_ref(),
            "0".as_ref(),
            "-E".as_ref(),
            "lazy_itable_init=1,lazy_journal_init=1,nodiscard".as_ref(),
            path.as_os_str(),
        ],
    )?;
    // An empty root, so that Docker fills the volume from the image's folder at the mount
    // point on first use, as it does for any new volume (it only fills empty ones).
    run(
        "debugfs",
        &[
            "-w".as_ref(),
            "-R".as_ref(),
            "rmdir lost+found".as_ref(),
            path.as_os_str(),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn names_with_paths_in_them_are_refused() {
        for bad in ["", "..", ".hidden", "a/b", "a b", "../etc"] {
            assert!(!plain_name(bad), "{bad}");
        }
        assert!(plain_name("3f2a-9c_x"));
    }

    #[test]
    fn a_superblock_that_is_not_ext4_measures_nothing() {
        assert_eq!(ext4_used_bytes(&[0u8; 1024]), None);
        assert_eq!(ext4_used_bytes(&[0u8; 10]), None);
    }

    /// The superblock of a fresh filesystem counts (nearly) nothing as used, like `df`.
    #[test]
    fn a_fresh_filesystem_measures_almost_nothing() {
        // mkfs.ext4 and debugfs work on a plain file, as any user.
        assert!(
            find_program("mkfs.ext4").is_some() && find_program("debugfs").is_some(),
            "e2fsprogs is not installed: run scripts/setup.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fresh.img");
        make_filesystem(&image, 1).unwrap();
        assert_eq!(std::fs::metadata(&image).unwrap().len(), 1 << 30);
        let mut superblock = [0u8; 1024];
        let mut file = File::open(&image).unwrap();
        file.seek(SeekFrom::Start(1024)).unwrap();
        file.read_exact(&mut superblock).unwrap();
        let used = ext4_used_bytes(&superblock).unwrap();
        assert!(used < 1 << 20, "a fresh filesystem uses {used} bytes");
    }
}
