from redis_persist.cli import main

main()
