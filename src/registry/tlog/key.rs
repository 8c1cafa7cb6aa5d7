//! Log keys and checkpoints: an Ed25519 key in C2SP signed-note encoding
//! (`PRIVATE+KEY+{name}+{id}+{base64}` in the key file, `{name}+{id}+{base64}`
//! in `log/key`), and checkpoints signed as C2SP signed notes.
//!
//! The key's name is the log's origin: the first line of every checkpoint
//! must equal it, so a checkpoint of one log cannot pass for another's.
//! Ed25519 signatures are deterministic, so two writers signing the same
//! tree produce the same checkpoint bytes.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use signed_note::{Note, Signer as _, StandardSigner, StandardVerifier, Verifier as _, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

use super::TlogError;

/// A log's private key (the signer).
pub struct LogKey {
    signer: StandardSigner,
    verifier: LogVerifier,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half.
        write!(f, "LogKey({})", self.verifier.vkey)
    }
}

/// A log's public key (the verifier), as published in `log/key`.
#[derive(Clone)]
pub struct LogVerifier {
    verifier: StandardVerifier,
    vkey: String,
}

impl std::fmt::Debug for LogVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogVerifier({})", self.vkey)
    }
}

/// Whether `name` can name a log (C2SP signed-note key names: no spaces,
/// no `+`; fm also keeps them printable ASCII).
pub fn valid_origin(name: &str) -> bool {
    signed_note::is_key_name_valid(name) && name.len() <= 200 && name.bytes().all(|b| b.is_ascii_graphic())
}

impl LogKey {
    /// A new random key named `origin`; returns it and its key-file text.
    pub fn generate(origin: &str) -> Result<(LogKey, String), TlogError> {
        if !valid_origin(origin) {
            return Err(TlogError::BadOrigin(origin.to_owned()));
        }
        let (skey, _vkey) = signed_note::generate_key(&mut rand_core::OsRng, origin);
        let key = LogKey::parse(&skey)?;
        Ok((key, format!("{skey}\n")))
    }

    /// Reads a key file's text.
    pub fn parse(text: &str) -> Result<LogKey, TlogError> {
        let text = text.trim();
        let bad = || TlogError::BadKey("not a signed-note private key (PRIVATE+KEY+NAME+ID+BASE64)".into());
        let signer = StandardSigner::new(text).map_err(|_| bad())?;
        // StandardSigner checked the id against the public half; derive that
        // half again for log/key.
        // PRIVATE+KEY+NAME+ID+BASE64 (base64 itself may contain '+').
        let b64 = text.splitn(5, '+').nth(4).ok_or_else(bad)?;
        let raw = BASE64_STANDARD.decode(b64).map_err(|_| bad())?;
        let secret: [u8; 32] = raw.get(1..).and_then(|s| s.try_into().ok()).ok_or_else(bad)?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&secret);
        let vkey = signed_note::new_ed25519_verifier_key(signer.name(), &signing.verifying_key());
        let verifier = LogVerifier::parse(&vkey)?;
        Ok(LogKey { signer, verifier })
    }

    /// The public half.
    pub fn verifier(&self) -> &LogVerifier {
        &self.verifier
    }

    /// The log's origin (the key's name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// A signed checkpoint for a tree of `size` records with root `root`.
    pub fn sign_checkpoint(&self, size: u64, root: Hash) -> Result<Vec<u8>, TlogError> {
        let cp = Checkpoint::new(self.origin(), size, root, "")
            .map_err(|_| TlogError::BadOrigin(self.origin().to_owned()))?;
        let mut note = Note::new(&cp.to_bytes(), &[]).map_err(|e| TlogError::Sign(e.to_string()))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| TlogError::Sign(e.to_string()))?;
        Ok(note.to_bytes())
    }
}

impl LogVerifier {
    /// Parses a verifier key (`name+hash+base64`, the content of `log/key`).
    pub fn parse(text: &str) -> Result<LogVerifier, TlogError> {
        let vkey = text.trim();
        let verifier = StandardVerifier::new(vkey)
            .map_err(|e| TlogError::BadKey(format!("not a signed-note verifier key (NAME+ID+BASE64): {e}")))?;
        if !valid_origin(verifier.name()) {
            return Err(TlogError::BadOrigin(verifier.name().to_owned()));
        }
        Ok(LogVerifier {
            verifier,
            vkey: vkey.to_owned(),
        })
    }

    /// `name+hash+base64`.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.verifier.name()
    }

    /// Checks a signed checkpoint: a well-formed note, signed by this key,
    /// whose text is a checkpoint of this origin.
    pub fn open_checkpoint(&self, note: &[u8]) -> Result<Checkpoint, TlogError> {
        let parsed = Note::from_bytes(note).map_err(|e| TlogError::BadCheckpoint(format!("not a signed note: {e}")))?;
        parsed
            .verify(&VerifierList::new(vec![Box::new(self.verifier.clone())]))
            .map_err(|e| TlogError::BadCheckpoint(format!("not signed by {}: {e}", self.vkey)))?;
        let cp = Checkpoint::from_bytes(parsed.text())
            .map_err(|_| TlogError::BadCheckpoint("the signed text is not a checkpoint".into()))?;
        if cp.origin() != self.origin() {
            return Err(TlogError::BadCheckpoint(format!(
                "its origin is {:?}, not the key's {:?}",
                cp.origin(),
                self.origin()
            )));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let (key, text) = LogKey::generate("fm.registry/test").unwrap();
        let again = LogKey::parse(&text).unwrap();
        assert_eq!(again.verifier().vkey(), key.verifier().vkey());
        let root = tlog_tiles::record_hash(b"x");
        let note = key.sign_checkpoint(7, root).unwrap();
        // Deterministic: the same tree signs to the same bytes.
        assert_eq!(again.sign_checkpoint(7, root).unwrap(), note);
        let v = LogVerifier::parse(key.verifier().vkey()).unwrap();
        let cp = v.open_checkpoint(&note).unwrap();
        assert_eq!((cp.size(), *cp.hash()), (7, root));

        // Another key over the same text: refused.
        let (other, _) = LogKey::generate("fm.registry/test").unwrap();
        let forged = other.sign_checkpoint(7, root).unwrap();
        assert!(v.open_checkpoint(&forged).is_err());
        // An edited size under the original signature: refused.
        let text = String::from_utf8(note.clone()).unwrap().replacen("\n7\n", "\n8\n", 1);
        assert!(v.open_checkpoint(text.as_bytes()).is_err());
        // A different origin (another key's name): refused.
        let (elsewhere, _) = LogKey::generate("fm.registry/other").unwrap();
        assert!(v.open_checkpoint(&elsewhere.sign_checkpoint(7, root).unwrap()).is_err());
        assert!(LogKey::parse("PRIVATE+KEY+x+00000000+AAAA").is_err());
        assert!(LogKey::generate("has space").is_err());
    }
}
