{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='day', tags=['events']) }}
select dt as day, event, count(*) as events, count(distinct user_id) as users
from {{ ref('fct_events') }}
{% if is_incremental() %}
where dt >= (select max(day) from {{ this }})
{% endif %}
group by all
