//! Mails the scheduled reports through `[report.smtp]` (lettre over tokio, TLS by rustls).

use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::schedule::{SmtpSecurity, SmtpSettings};

/// How long one conversation with the mail server may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// One attached file.
pub struct MailFile {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The message: `body` as plain text, each file attached (base64).
pub fn message(from: &str, to: &[String], subject: &str, body: &str, files: Vec<MailFile>) -> Result<Message, String> {
    let mailbox = |s: &str| s.parse::<Mailbox>().map_err(|e| format!("{s:?}: {e}"));
    let mut builder = Message::builder().from(mailbox(from)?).subject(subject);
    for t in to {
        builder = builder.to(mailbox(t)?);
    }
    let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(body.to_string()));
    for f in files {
        let content_type = ContentType::parse(f.content_type).map_err(|e| e.to_string())?;
        let body = Body::new_with_encoding(f.bytes, ContentTransferEncoding::Base64)
            .map_err(|_| format!("{} cannot be encoded", f.name))?;
        parts = parts.singlepart(Attachment::new(f.name).body(body, content_type));
    }
    builder.multipart(parts).map_err(|e| e.to_string())
}

/// Hands `message` to the server; `Ok` once the server accepted it.
pub async fn send(smtp: &SmtpSettings, message: Message) -> Result<(), String> {
    type Transport = AsyncSmtpTransport<Tokio1Executor>;
    let host = smtp.host.as_str();
    let builder = match smtp.security {
        SmtpSecurity::StartTls => Transport::starttls_relay(host).map_err(|e| e.to_string())?,
        SmtpSecurity::Tls => Transport::relay(host).map_err(|e| e.to_string())?,
        SmtpSecurity::None => Transport::builder_dangerous(host),
    };
    let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(file)) = (&smtp.username, &smtp.password_file) {
        let text = tokio::fs::read_to_string(file)
            .await
            .map_err(|e| format!("reading report.smtp.password_file {}: {e}", file.display()))?;
        let password = text.lines().next().unwrap_or("").trim().to_string();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    let transport = builder.build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{}: {e}", smtp.host, smtp.port))
}
