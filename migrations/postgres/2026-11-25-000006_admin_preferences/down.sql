DROP TABLE admin_preferences;
