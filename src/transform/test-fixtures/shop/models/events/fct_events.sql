{{ config(materialized='incremental', unique_key='event_id', watermark='ts', lookback='1 hour', tags=['events']) }}
select event_id, event, user_id, ts, dt
from {{ source('sluice', 'events') }}
