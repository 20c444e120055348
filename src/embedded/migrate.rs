//! Upgrades of an older store file to [`super::open::FORMAT`], each in the one write transaction
//! that also records the new format, so an interrupted upgrade leaves the file as it was and the
//! next open runs it again. They only add what the newer layout indexes; no record changes.

use redb::{ReadableTable, WriteTransaction};

use switchboard_handlers::core::model::WalletTransaction;
use switchboard_handlers::core::ports::StoreResult;

use super::chats::add_reader;
use super::codec::{Db, decode};
use super::tables::{MESSAGE_READERS, PROJECT_TRANSACTIONS, READ_COUNTS, RECEIPTS, TRANSACTIONS};

/// Format 1 → 2: receipts indexed message first (`message_readers`, `read_counts`) and
/// transactions per project (`project_transactions`). Reads every receipt and transaction once.
pub fn to_2(txn: &WriteTransaction) -> StoreResult<()> {
    let receipts = txn.open_table(RECEIPTS).db()?;
    let mut readers = txn.open_table(MESSAGE_READERS).db()?;
    let mut counts = txn.open_table(READ_COUNTS).db()?;
    for entry in receipts.iter().db()? {
        let (k, v) = entry.db()?;
        add_reader(&mut readers, &mut counts, k.value(), v.value())?;
    }
    let transactions = txn.open_table(TRANSACTIONS).db()?;
    let mut index = txn.open_table(PROJECT_TRANSACTIONS).db()?;
    for entry in transactions.iter().db()? {
        let (k, v) = entry.db()?;
        let t: WalletTransaction = decode("wallet_transactions", v.value())?;
        index
            .insert(
                (t.project_id.as_str(), t.created_at.millis(), k.value()),
                t.address_id.as_str(),
            )
            .db()?;
    }
    Ok(())
}
