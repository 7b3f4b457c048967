-- Undoes 0004_ops.up.sql, in reverse order.
DROP TABLE notifications;
DROP TABLE error_events;
DROP TYPE error_severity;
DROP TABLE audit_log;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TYPE webhook_delivery_status;
DROP TABLE plugin_configs;
