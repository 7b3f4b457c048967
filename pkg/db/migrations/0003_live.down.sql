-- Undoes 0003_live.up.sql, in reverse order.
DROP TABLE restream_destinations;
DROP TABLE restream_jobs;
DROP TYPE restream_destination_status;
DROP TYPE restream_status;
DROP TYPE restream_input_type;
DROP TABLE streams;
