//! The three stores an [`ObjectStorage`](super::ObjectStorage) can open,
//! each configured from its cloud's standard environment variables.

use std::io;
use std::sync::Arc;

use super::location::{Endpoint, Location, credential_variables, invalid, is_loopback};

fn build_failed(at: &Location, e: object_store::Error) -> io::Error {
    io::Error::other(format!("cannot open {}: {e}", at.shown()))
}

/// An S3 (or S3-compatible) bucket; credentials from the `AWS_*` variables.
pub(super) fn s3_store(at: &Location, endpoint: Option<&Endpoint>) -> io::Result<Arc<object_store::aws::AmazonS3>> {
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&at.bucket);
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(&e.url).with_allow_http(e.http);
    }
    Ok(Arc::new(builder.build().map_err(|e| build_failed(at, e))?))
}

/// A Google Cloud Storage bucket; credentials from the `GOOGLE_*`
/// variables (or the machine's service account). `endpoint` replaces
/// `https://storage.googleapis.com` (an emulator, or a private endpoint).
pub(super) fn gcs_store(
    at: &Location,
    endpoint: Option<&Endpoint>,
) -> io::Result<Arc<object_store::gcp::GoogleCloudStorage>> {
    use object_store::ClientConfigKey;
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(&at.bucket);
    if let Some(e) = endpoint {
        builder = builder
            .with_base_url(&e.url)
            .with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), e.http.to_string());
        let explicit = [
            GoogleConfigKey::ServiceAccount,
            GoogleConfigKey::ServiceAccountKey,
            GoogleConfigKey::ApplicationCredentials,
            GoogleConfigKey::BearerToken,
        ]
        .iter()
        .any(|k| builder.get_config_value(k).is_some());
        if e.loopback && !explicit {
            // An emulator takes no OAuth token, and fetching one would ask
            // the cloud metadata server, off this machine.
            let anonymous = object_store::gcp::GcpCredential { bearer: String::new() };
            builder = builder.with_credentials(Arc::new(object_store::StaticCredentialProvider::new(anonymous)));
        }
    }
    let store = builder.build().map_err(|e| {
        io::Error::other(format!(
            "cannot open {}: {e} (credentials: {})",
            at.shown(),
            credential_variables("gs://")
        ))
    })?;
    Ok(Arc::new(store))
}

/// An Azure Blob Storage container; the account from the URL or
/// `AZURE_STORAGE_ACCOUNT_NAME`, credentials from the `AZURE_*` variables.
/// `endpoint` replaces `https://ACCOUNT.blob.core.windows.net` (for
/// Azurite: `http://127.0.0.1:10000/devstoreaccount1`).
pub(super) fn azure_store(
    at: &Location,
    endpoint: Option<&Endpoint>,
) -> io::Result<Arc<object_store::azure::MicrosoftAzure>> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(&at.bucket);
    if let Some(account) = &at.account {
        builder = builder.with_account(account);
    }
    let emulator = builder
        .get_config_value(&AzureConfigKey::UseEmulator)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if emulator {
        // AZURE_STORAGE_USE_EMULATOR talks plain http to AZURITE_BLOB_STORAGE_URL.
        let target = std::env::var("AZURITE_BLOB_STORAGE_URL").unwrap_or_else(|_| "http://127.0.0.1:10000".into());
        let loopback = url::Url::parse(&target).is_ok_and(|u| is_loopback(&u));
        if !loopback || endpoint.is_some() {
            return Err(invalid(format!(
                "{}: AZURE_STORAGE_USE_EMULATOR is set, which talks plain http to AZURITE_BLOB_STORAGE_URL; \
                 use it only with a loopback emulator and without --storage-endpoint",
                at.shown()
            )));
        }
    } else if builder.get_config_value(&AzureConfigKey::AccountName).is_none() {
        return Err(invalid(format!(
            "{}: no storage account: set AZURE_STORAGE_ACCOUNT_NAME (and {}), or name it in the URL \
             (abfss://{}@ACCOUNT.dfs.core.windows.net/PREFIX)",
            at.shown(),
            credential_variables("az://"),
            at.bucket
        )));
    }
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e.url.clone()).with_allow_http(e.http);
    }
    let store = builder.build().map_err(|e| {
        io::Error::other(format!(
            "cannot open {}: {e} (credentials: {})",
            at.shown(),
            credential_variables("az://")
        ))
    })?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::super::ObjectStorage;
    use super::*;

    #[test]
    fn credential_errors_name_the_variables() {
        if std::env::var_os("AZURE_STORAGE_ACCOUNT_NAME").is_some() {
            return;
        }
        let e = ObjectStorage::open("az://cont/reg", None).expect_err("no account");
        let e = e.to_string();
        assert!(
            e.contains("AZURE_STORAGE_ACCOUNT_NAME")
                && e.contains("AZURE_STORAGE_ACCOUNT_KEY")
                && e.contains("az://cont/reg"),
            "{e}"
        );
        assert!(credential_variables("gs://b").contains("GOOGLE_APPLICATION_CREDENTIALS"));
        assert!(credential_variables("s3://b").contains("AWS_ACCESS_KEY_ID"));
    }
}
