@echo off
rem SoVITS Studio launcher (Windows, double-click). First run creates .venv beside the project and installs it;
rem the CPU build of PyTorch is used when no NVIDIA GPU is found. Later runs start at once.
setlocal
set "HERE=%~dp0.."
if "%SOVITS_STUDIO_VENV%"=="" (set "VENV=%HERE%\.venv") else (set "VENV=%SOVITS_STUDIO_VENV%")
if exist "%VENV%\.sovits-studio-installed" goto run
echo First start: installing SoVITS Studio into %VENV% (a few minutes, once).
py -3 -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)" || (echo SoVITS Studio needs Python 3.10 or newer from python.org & pause & exit /b 1)
py -3 -m venv "%VENV%" || (pause & exit /b 1)
where nvidia-smi >nul 2>nul || "%VENV%\Scripts\python.exe" -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
"%VENV%\Scripts\python.exe" -m pip install -e "%HERE%" || (pause & exit /b 1)
echo installed> "%VENV%\.sovits-studio-installed"
:run
set "NO_PROXY=localhost,127.0.0.1,::1"
rem Windows slows background Python: run the studio at high priority (GPT-SoVITS#2347).
start "" /b /high /wait "%VENV%\Scripts\python.exe" "%HERE%\webui.py" %*
if errorlevel 1 (echo The studio stopped with an error; the message is above. & pause)
endlocal
