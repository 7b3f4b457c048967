-- Undoes 0005_profiles.up.sql: removes the seeded system presets. Custom
-- profiles stay (they were not created by the migration), and jobs keep
-- naming the presets they used (jobs.profiles has no foreign key).
DELETE FROM profiles
 WHERE is_system
   AND id IN ('1080p-h264', '720p-h264', '480p-h264', '1080p-hevc', '720p-vp9', '1080p-av1',
              'hls-ladder');
