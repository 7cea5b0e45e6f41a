//! The bundle store on disk.
//!
//! ```text
//! DATA_DIR/s3/tmp/                         uploads in progress (emptied at start)
//! DATA_DIR/s3/buckets/<bucket>/bucket.json creation time
//! DATA_DIR/s3/buckets/<bucket>/objects/<encoded key>
//! DATA_DIR/s3/buckets/<bucket>/uploads/<upload id>/upload.json and one file per part
//! ```
//!
//! Every stored file (object or part) is its data followed by its metadata (JSON), the JSON's
//! length and a magic number. Data and metadata live in one file so that a single rename
//! publishes both: a reader never sees new data with old metadata. Writes go to `tmp/` first and
//! are renamed into place once complete and checked, so a failed upload leaves nothing.
//!
//! Keys are never used as paths: a file name is the key percent-encoded (everything but ASCII
//! letters, digits, `-`, `_` and `~`, so no `/`, `.` or `..` can reach the file system), or, for
//! keys too long for a file name, `#` and the SHA-256 of the key (the key is then read from the
//! metadata). Bucket names are validated to S3's rules before they get here.

use std::collections::BTreeMap;
use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};

use super::error::{S3Error, S3Result};

const MAGIC: &[u8; 8] = b"LFS3OBJ1";
/// Trailer after the metadata: its length (u32, little-endian) and the magic number.
const TRAILER_LEN: u64 = 4 + MAGIC.len() as u64;
/// Longest file name used for an encoded key (file systems allow 255 bytes).
const MAX_FILE_NAME: usize = 200;
const UPLOAD_FILE: &str = "upload.json";

/// What is kept about an object beside its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Without quotes: the hex MD5, or `<hex>-<parts>` for a multipart upload.
    pub etag: String,
    pub content_type: String,
    /// Epoch milliseconds.
    pub last_modified: i64,
    /// Headers returned as stored: `x-amz-meta-*`, Content-Encoding, Cache-Control...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The checksum given with a single PUT, as (algorithm name, base64 value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartMeta {
    pub part_number: u32,
    pub size: u64,
    /// Hex MD5 of the part, without quotes.
    pub etag: String,
    pub last_modified: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMeta {
    pub key: String,
    pub content_type: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub initiated: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct BucketMeta {
    created: i64,
}

pub struct BucketInfo {
    pub name: String,
    pub created: i64,
}

pub struct ObjectStore {
    root: PathBuf,
}

impl ObjectStore {
    /// Opens (creating if needed) the store under `root`, discarding what interrupted uploads
    /// left in its temporary area.
    pub fn open(root: &Path) -> std::io::Result<ObjectStore> {
        let tmp = root.join("tmp");
        match std::fs::remove_dir_all(&tmp) {
            Err(error) if error.kind() != ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        for dir in [root, &tmp, &root.join("buckets")] {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        Ok(ObjectStore { root: root.to_owned() })
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join("buckets").join(bucket)
    }

    fn objects_dir(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join("objects")
    }

    fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.objects_dir(bucket).join(file_name(key))
    }

    fn upload_dir(&self, bucket: &str, upload_id: &str) -> PathBuf {
        self.bucket_dir(bucket).join("uploads").join(upload_id)
    }

    fn temp_path(&self) -> PathBuf {
        self.root.join("tmp").join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// A new temporary file for an upload; removed when dropped unless committed.
    pub async fn temp_file(&self) -> S3Result<TempFile> {
        let path = self.temp_path();
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options.open(&path).await?;
        Ok(TempFile { path, writer: Some(BufWriter::with_capacity(1 << 20, file)), written: 0 })
    }

    // -- buckets ------------------------------------------------------------------------------

    /// A bucket exists while its `objects` directory does (deleting a bucket removes that first).
    pub async fn bucket_exists(&self, bucket: &str) -> S3Result<bool> {
        match fs::metadata(self.objects_dir(bucket)).await {
            Ok(metadata) => Ok(metadata.is_dir()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        if self.bucket_exists(bucket).await? { Ok(()) } else { Err(S3Error::no_such_bucket(bucket)) }
    }

    pub async fn create_bucket(&self, bucket: &str, now: i64) -> S3Result<()> {
        let target = self.bucket_dir(bucket);
        for attempt in 0..2 {
            // Built aside and renamed into place, so a bucket appears whole or not at all.
            let staging = self.temp_path();
            fs::create_dir(&staging).await?;
            let built = async {
                fs::create_dir(staging.join("objects")).await?;
                fs::create_dir(staging.join("uploads")).await?;
                let meta = serde_json::to_vec(&BucketMeta { created: now }).map_err(std::io::Error::other)?;
                fs::write(staging.join("bucket.json"), meta).await?;
                fs::rename(&staging, &target).await
            }
            .await;
            match built {
                Ok(()) => return Ok(()),
                Err(error) => {
                    let _ = fs::remove_dir_all(&staging).await;
                    if !matches!(error.kind(), ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty) {
                        return Err(error.into());
                    }
                    if self.bucket_exists(bucket).await? {
                        return Err(S3Error::new(
                            hyper::StatusCode::CONFLICT,
                            "BucketAlreadyOwnedByYou",
                            "Your previous request to create the named bucket succeeded and you already own it.",
                        )
                        .with("BucketName", bucket));
                    }
                    // What an interrupted DeleteBucket left: finish removing it, then retry once.
                    if attempt == 0 {
                        fs::remove_dir_all(&target).await?;
                    }
                }
            }
        }
        Err(S3Error::internal(format!("could not create the directory of bucket {bucket}")))
    }

    /// Deletes an empty bucket (pending multipart uploads go with it).
    pub async fn delete_bucket(&self, bucket: &str) -> S3Result<()> {
        // Removing the empty `objects` directory is the atomic step: it fails while any object
        // exists, and once done, uploads that finish later find no bucket.
        match fs::remove_dir(self.objects_dir(bucket)).await {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => return Err(S3Error::no_such_bucket(bucket)),
            Err(error) if error.kind() == ErrorKind::DirectoryNotEmpty => {
                return Err(S3Error::new(
                    hyper::StatusCode::CONFLICT,
                    "BucketNotEmpty",
                    "The bucket you tried to delete is not empty",
                )
                .with("BucketName", bucket));
            }
            Err(error) => return Err(error.into()),
        }
        let trash = self.temp_path();
        if let Err(error) = async {
            fs::rename(self.bucket_dir(bucket), &trash).await?;
            fs::remove_dir_all(&trash).await
        }
        .await
        {
            // The bucket is gone already; what remains is cleared by the next CreateBucket.
            tracing::warn!(bucket, %error, "could not remove a deleted bucket's directory");
        }
        Ok(())
    }

    pub async fn list_buckets(&self) -> S3Result<Vec<BucketInfo>> {
        let mut buckets = Vec::new();
        let mut entries = fs::read_dir(self.root.join("buckets")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if !self.bucket_exists(&name).await? {
                continue;
            }
            let created = match fs::read(entry.path().join("bucket.json")).await {
                Ok(bytes) => serde_json::from_slice::<BucketMeta>(&bytes).map(|meta| meta.created).unwrap_or(0),
                Err(_) => 0,
            };
            buckets.push(BucketInfo { name, created });
        }
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(buckets)
    }

    // -- objects ------------------------------------------------------------------------------

    /// Publishes a completely written temporary file as an object. With `if_absent`, refuses
    /// (PreconditionFailed) when the key exists, atomically.
    pub async fn commit_object(
        &self,
        bucket: &str,
        temp: TempFile,
        meta: &ObjectMeta,
        if_absent: bool,
    ) -> S3Result<()> {
        let path = self.object_path(bucket, &meta.key);
        let temp = temp.seal(meta).await?;
        let result = if if_absent {
            // A hard link fails if the name exists, where a rename would replace it.
            match fs::hard_link(&temp.path, &path).await {
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                    return Err(precondition_failed("If-None-Match"));
                }
                result => result,
            }
        } else {
            fs::rename(&temp.path, &path).await
        };
        match result {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Err(S3Error::no_such_bucket(bucket)),
            Err(error) => Err(error.into()),
        }
        // `temp` is dropped here: after a rename its path no longer exists; after a link it is
        // the second name, which goes.
    }

    /// Opens an object for reading: its file (positioned at the start of the data) and metadata.
    pub async fn open_object(&self, bucket: &str, key: &str) -> S3Result<(File, ObjectMeta)> {
        match File::open(self.object_path(bucket, key)).await {
            Ok(mut file) => {
                let meta: ObjectMeta = read_meta(&mut file).await?;
                file.seek(SeekFrom::Start(0)).await?;
                Ok((file, meta))
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                self.require_bucket(bucket).await?;
                Err(S3Error::no_such_key(key))
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> S3Result<()> {
        self.require_bucket(bucket).await?;
        match fs::remove_file(self.object_path(bucket, key)).await {
            Err(error) if error.kind() != ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// Every key of a bucket, sorted as S3 sorts them (by UTF-8 bytes).
    pub async fn list_keys(&self, bucket: &str) -> S3Result<Vec<String>> {
        let mut entries = match fs::read_dir(self.objects_dir(bucket)).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Err(S3Error::no_such_bucket(bucket)),
            Err(error) => return Err(error.into()),
        };
        let mut keys = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if let Some(key) = key_of_file_name(&name) {
                keys.push(key);
            } else if name.starts_with('#') {
                // A hashed name: the key is in the metadata.
                let Ok(mut file) = File::open(entry.path()).await else { continue };
                if let Ok(meta) = read_meta::<ObjectMeta>(&mut file).await {
                    keys.push(meta.key);
                }
            }
        }
        keys.sort_unstable();
        Ok(keys)
    }

    /// The metadata of an object, or None if it is gone.
    pub async fn object_meta(&self, bucket: &str, key: &str) -> S3Result<Option<ObjectMeta>> {
        match File::open(self.object_path(bucket, key)).await {
            Ok(mut file) => Ok(Some(read_meta(&mut file).await?)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    // -- multipart uploads --------------------------------------------------------------------

    pub async fn create_upload(&self, bucket: &str, meta: &UploadMeta) -> S3Result<String> {
        self.require_bucket(bucket).await?;
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let staging = self.temp_path();
        fs::create_dir(&staging).await?;
        let result = async {
            let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
            fs::write(staging.join(UPLOAD_FILE), json).await?;
            fs::rename(&staging, self.upload_dir(bucket, &upload_id)).await
        }
        .await;
        if let Err(error) = result {
            let _ = fs::remove_dir_all(&staging).await;
            return Err(match error.kind() {
                ErrorKind::NotFound => S3Error::no_such_bucket(bucket),
                _ => error.into(),
            });
        }
        Ok(upload_id)
    }

    /// The upload's metadata; NoSuchUpload unless it exists for this key.
    pub async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadMeta> {
        if !valid_upload_id(upload_id) {
            return Err(S3Error::no_such_upload(upload_id));
        }
        match fs::read(self.upload_dir(bucket, upload_id).join(UPLOAD_FILE)).await {
            Ok(bytes) => {
                let meta: UploadMeta = serde_json::from_slice(&bytes).map_err(S3Error::internal)?;
                if meta.key != key {
                    return Err(S3Error::no_such_upload(upload_id));
                }
                Ok(meta)
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                self.require_bucket(bucket).await?;
                Err(S3Error::no_such_upload(upload_id))
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn commit_part(&self, bucket: &str, upload_id: &str, temp: TempFile, meta: &PartMeta) -> S3Result<()> {
        let temp = temp.seal(meta).await?;
        let path = self.upload_dir(bucket, upload_id).join(meta.part_number.to_string());
        match fs::rename(&temp.path, path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Err(S3Error::no_such_upload(upload_id)),
            Err(error) => Err(error.into()),
        }
    }

    /// The parts uploaded so far, by part number.
    pub async fn list_parts(&self, bucket: &str, upload_id: &str) -> S3Result<Vec<PartMeta>> {
        let mut entries = match fs::read_dir(self.upload_dir(bucket, upload_id)).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Err(S3Error::no_such_upload(upload_id)),
            Err(error) => return Err(error.into()),
        };
        let mut parts = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let is_part = entry.file_name().to_str().is_some_and(|name| name.parse::<u32>().is_ok());
            if !is_part {
                continue;
            }
            // A part replaced or aborted meanwhile is skipped.
            let Ok(mut file) = File::open(entry.path()).await else { continue };
            parts.push(read_meta::<PartMeta>(&mut file).await?);
        }
        parts.sort_by_key(|part| part.part_number);
        Ok(parts)
    }

    /// Opens a part for reading, positioned at its data.
    pub async fn open_part(
        &self,
        bucket: &str,
        upload_id: &str,
        part_number: u32,
    ) -> S3Result<Option<(File, PartMeta)>> {
        match File::open(self.upload_dir(bucket, upload_id).join(part_number.to_string())).await {
            Ok(mut file) => {
                let meta = read_meta(&mut file).await?;
                file.seek(SeekFrom::Start(0)).await?;
                Ok(Some((file, meta)))
            }
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes an upload and its parts (Abort, or after Complete).
    pub async fn remove_upload(&self, bucket: &str, upload_id: &str) -> S3Result<()> {
        if !valid_upload_id(upload_id) {
            return Err(S3Error::no_such_upload(upload_id));
        }
        // Renamed away first, so a concurrent UploadPart or Complete finds no upload at once.
        let trash = self.temp_path();
        match fs::rename(self.upload_dir(bucket, upload_id), &trash).await {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => {
                self.require_bucket(bucket).await?;
                return Err(S3Error::no_such_upload(upload_id));
            }
            Err(error) => return Err(error.into()),
        }
        if let Err(error) = fs::remove_dir_all(&trash).await {
            tracing::warn!(%error, "could not remove a finished upload's parts");
        }
        Ok(())
    }

    /// Pending uploads of a bucket: (upload id, metadata).
    pub async fn list_uploads(&self, bucket: &str) -> S3Result<Vec<(String, UploadMeta)>> {
        self.require_bucket(bucket).await?;
        let mut uploads = Vec::new();
        let mut entries = fs::read_dir(self.bucket_dir(bucket).join("uploads")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let Ok(upload_id) = entry.file_name().into_string() else { continue };
            let Ok(bytes) = fs::read(entry.path().join(UPLOAD_FILE)).await else { continue };
            if let Ok(meta) = serde_json::from_slice::<UploadMeta>(&bytes) {
                uploads.push((upload_id, meta));
            }
        }
        uploads.sort_by(|a, b| (&a.1.key, a.1.initiated, &a.0).cmp(&(&b.1.key, b.1.initiated, &b.0)));
        Ok(uploads)
    }
}

pub fn precondition_failed(condition: &str) -> S3Error {
    S3Error::new(
        hyper::StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    )
    .with("Condition", condition)
}

/// Upload ids are ours (32 hex digits); anything else cannot name one, nor a path.
fn valid_upload_id(upload_id: &str) -> bool {
    upload_id.len() == 32 && upload_id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A file being written in the temporary area. Dropping it removes the file.
pub struct TempFile {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    written: u64,
}

impl TempFile {
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Flushes what was written, so the file can be read back (from [`TempFile::path`]).
    pub async fn finish(&mut self) -> std::io::Result<()> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush().await?;
        }
        Ok(())
    }

    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let writer = self.writer.as_mut().ok_or_else(|| std::io::Error::other("temporary file already sealed"))?;
        writer.write_all(data).await?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Copies `len` bytes from `source`.
    pub async fn copy_from(&mut self, source: &mut File, len: u64) -> std::io::Result<()> {
        let writer = self.writer.as_mut().ok_or_else(|| std::io::Error::other("temporary file already sealed"))?;
        let copied = tokio::io::copy(&mut source.take(len), writer).await?;
        if copied != len {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "a part is shorter than its metadata says"));
        }
        self.written += len;
        Ok(())
    }

    /// Appends the metadata trailer, flushes and syncs the file, ready to be renamed into place.
    async fn seal<T: Serialize>(mut self, meta: &T) -> std::io::Result<TempFile> {
        let mut writer = self.writer.take().ok_or_else(|| std::io::Error::other("temporary file already sealed"))?;
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        let len = u32::try_from(json.len()).map_err(std::io::Error::other)?;
        writer.write_all(&json).await?;
        writer.write_all(&len.to_le_bytes()).await?;
        writer.write_all(MAGIC).await?;
        writer.flush().await?;
        let file = writer.into_inner();
        file.sync_data().await?;
        Ok(self)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // After a successful rename the path is gone and this does nothing.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads the metadata trailer of a stored file and checks it against the file's length.
async fn read_meta<T: DeserializeOwned + HasSize>(file: &mut File) -> S3Result<T> {
    let len = file.metadata().await?.len();
    let corrupt = || S3Error::internal("a stored object's metadata is unreadable");
    if len < TRAILER_LEN {
        return Err(corrupt());
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(len - TRAILER_LEN)).await?;
    file.read_exact(&mut trailer).await?;
    if &trailer[4..] != MAGIC {
        return Err(corrupt());
    }
    let json_len = u64::from(u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]));
    if json_len + TRAILER_LEN > len {
        return Err(corrupt());
    }
    let mut json = vec![0u8; json_len as usize];
    file.seek(SeekFrom::Start(len - TRAILER_LEN - json_len)).await?;
    file.read_exact(&mut json).await?;
    let meta: T = serde_json::from_slice(&json).map_err(|_| corrupt())?;
    if meta.size() != len - TRAILER_LEN - json_len {
        return Err(corrupt());
    }
    Ok(meta)
}

trait HasSize {
    fn size(&self) -> u64;
}

impl HasSize for ObjectMeta {
    fn size(&self) -> u64 {
        self.size
    }
}

impl HasSize for PartMeta {
    fn size(&self) -> u64 {
        self.size
    }
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'~'
}

/// The file name of a key (see the module documentation).
fn file_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 8);
    for b in key.bytes() {
        if is_plain(b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.len() > MAX_FILE_NAME { format!("#{}", landfall_sigv4::sha256_hex(key.as_bytes())) } else { name }
}

/// The key a percent-encoded file name stands for; None for hashed names and anything else.
fn key_of_file_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut key = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = name.get(index + 1..index + 3)?;
                key.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            b if is_plain(b) => {
                key.push(b);
                index += 1;
            }
            _ => return None,
        }
    }
    if key.is_empty() {
        return None;
    }
    String::from_utf8(key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_never_escape() {
        for key in ["../x", "..", ".", "/etc/passwd", "a/b/../../c", "a\0b", "é/ü", "%2F", "#x"] {
            let name = file_name(key);
            assert!(name.bytes().all(|b| is_plain(b) || b == b'%'), "{key} -> {name}");
            assert_eq!(key_of_file_name(&name).as_deref(), Some(key));
        }
        let long = "k/".repeat(300);
        let name = file_name(&long);
        assert!(name.starts_with('#') && name.len() == 65);
        assert_eq!(key_of_file_name(&name), None);
        assert_eq!(key_of_file_name("a%zz"), None);
        assert_eq!(key_of_file_name("a.b"), None);
    }

    fn meta(key: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size,
            etag: "e".to_owned(),
            content_type: "binary/octet-stream".to_owned(),
            last_modified: 1,
            headers: BTreeMap::new(),
            checksum: None,
        }
    }

    #[tokio::test]
    async fn objects_round_trip_and_temporaries_go() {
        let dir = std::env::temp_dir().join(format!("landfall-s3-{}", uuid::Uuid::new_v4().simple()));
        let store = ObjectStore::open(&dir).unwrap();
        store.create_bucket("bucket", 5).await.unwrap();
        assert_eq!(store.create_bucket("bucket", 6).await.unwrap_err().code, "BucketAlreadyOwnedByYou");
        let long = "x".repeat(500);
        for key in ["../escape", "a/b", long.as_str()] {
            let mut temp = store.temp_file().await.unwrap();
            temp.write(b"hello").await.unwrap();
            store.commit_object("bucket", temp, &meta(key, 5), false).await.unwrap();
        }
        assert!(!dir.join("buckets/escape").exists() && !dir.join("escape").exists());
        assert_eq!(store.list_keys("bucket").await.unwrap(), ["../escape", "a/b", long.as_str()]);
        let (mut file, found) = store.open_object("bucket", "a/b").await.unwrap();
        let mut data = vec![0; found.size as usize];
        file.read_exact(&mut data).await.unwrap();
        assert_eq!(data, b"hello");

        // An upload dropped before commit leaves nothing.
        let mut temp = store.temp_file().await.unwrap();
        temp.write(b"partial").await.unwrap();
        drop(temp);
        assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);

        let temp = store.temp_file().await.unwrap();
        let error = store.commit_object("bucket", temp, &meta("a/b", 0), true).await.unwrap_err();
        assert_eq!(error.code, "PreconditionFailed");
        assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);

        assert_eq!(store.delete_bucket("bucket").await.unwrap_err().code, "BucketNotEmpty");
        for key in store.list_keys("bucket").await.unwrap() {
            store.delete_object("bucket", &key).await.unwrap();
        }
        store.delete_bucket("bucket").await.unwrap();
        assert_eq!(store.delete_bucket("bucket").await.unwrap_err().code, "NoSuchBucket");
        assert!(store.list_buckets().await.unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
