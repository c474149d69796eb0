-- The test suite's roles and databases (tests/common/mod.rs, template()).
SET password_encryption = 'scram-sha-256';
CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw';
CREATE ROLE alice LOGIN PASSWORD 'alice-pw';
CREATE ROLE bob LOGIN;
SET password_encryption = 'md5';
CREATE ROLE md5_user LOGIN PASSWORD 'md5-pw';
CREATE DATABASE appdb;
CREATE DATABASE sslonly;
CREATE DATABASE nossl;
CREATE DATABASE certdb;
CREATE DATABASE mapdb;
CREATE DATABASE vcadb;
CREATE DATABASE pwdb;
