//! A change to one document, whoever made it, and its wire form.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::events;
use crate::ids::{CollectionId, DocumentId, ProjectId};
use crate::model::DocumentBody;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// Serializable, because in fallback mode it travels the cluster bus between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentChange {
    pub kind: ChangeKind,
    pub project_id: ProjectId,
    pub collection_id: CollectionId,
    pub document_id: DocumentId,
    /// The document after the change; `None` for a delete (and for an update whose document
    /// was deleted again before the change stream looked it up).
    pub document: Option<DocumentBody>,
    /// The document before the change, when known (own writes; MongoDB pre-images).
    pub previous: Option<DocumentBody>,
    pub changed_at: Timestamp,
}

impl DocumentChange {
    pub fn event(&self) -> &'static str {
        match self.kind {
            ChangeKind::Created => events::DOCUMENT_CREATED,
            ChangeKind::Updated => events::DOCUMENT_UPDATED,
            ChangeKind::Deleted => events::DOCUMENT_DELETED,
        }
    }

    /// `{ projectId, collectionId, documentId, document, previous?, changedAt }`.
    pub fn payload(&self) -> Value {
        let mut v = json!({
            "projectId": self.project_id,
            "collectionId": self.collection_id,
            "documentId": self.document_id,
            "document": self.document,
            "changedAt": self.changed_at,
        });
        if let (Some(prev), Some(obj)) = (&self.previous, v.as_object_mut()) {
            obj.insert("previous".to_owned(), Value::Object(prev.clone()));
        }
        v
    }
}
